"""The benchmark suites `longread eval` knows, by name."""

from __future__ import annotations

from pathlib import Path

from longread.evaluation.base import Suite

SUITES = ("ruler", "aa-lcr", "doc2dial", "aclsum", "niah", "books")


def suite_class(name: str) -> type[Suite]:
    """The class of a suite, for its metric descriptions, without loading its data."""
    from longread.evaluation.suites.aalcr import AALCRSuite
    from longread.evaluation.suites.aclsum import ACLSumSuite
    from longread.evaluation.suites.books import BooksSuite
    from longread.evaluation.suites.doc2dial import Doc2DialSuite
    from longread.evaluation.suites.niah import NIAHSuite
    from longread.evaluation.suites.ruler import RulerSuite

    classes: dict[str, type[Suite]] = {
        "ruler": RulerSuite,
        "aa-lcr": AALCRSuite,
        "doc2dial": Doc2DialSuite,
        "aclsum": ACLSumSuite,
        "niah": NIAHSuite,
        "books": BooksSuite,
    }
    if name not in classes:
        raise ValueError(f"unknown suite '{name}' (choose from {', '.join(SUITES)})")
    return classes[name]


def make_suite(
    name: str,
    *,
    cache_dir: Path,
    lengths: tuple[int, ...] | None = None,
    tasks: tuple[str, ...] | None = None,
    haystack: Path | None = None,
    depths: tuple[float, ...] | None = None,
    split: str = "test",
    books: Path | None = None,
) -> Suite:
    """Build a suite; options a suite does not use are rejected rather than ignored."""
    if name not in SUITES:
        raise ValueError(f"unknown suite '{name}' (choose from {', '.join(SUITES)})")
    if tasks and name != "ruler":
        raise ValueError("--tasks applies to the ruler suite only")
    if lengths and name not in ("ruler", "niah"):
        raise ValueError("--lengths applies to the ruler and niah suites only")
    if (haystack or depths) and name != "niah":
        raise ValueError("--haystack and --depths apply to the niah suite only")
    if books and name != "books":
        raise ValueError("--books applies to the books suite only")
    if name == "books":
        from longread.evaluation.suites.books import BooksSuite

        return BooksSuite(books)
    if name == "ruler":
        from longread.evaluation.suites import ruler

        return ruler.RulerSuite(
            cache_dir / "ruler", tasks=tasks or ruler.TASKS, lengths=lengths or ruler.DEFAULT_LENGTHS
        )
    if name == "niah":
        from longread.evaluation.suites import niah

        return niah.NIAHSuite(haystack, lengths=lengths or niah.DEFAULT_LENGTHS, depths=depths or niah.DEFAULT_DEPTHS)
    if name == "aa-lcr":
        from longread.evaluation.suites.aalcr import AALCRSuite

        return AALCRSuite()
    if name == "doc2dial":
        from longread.evaluation.suites.doc2dial import Doc2DialSuite

        return Doc2DialSuite()
    from longread.evaluation.suites.aclsum import ACLSumSuite

    return ACLSumSuite(split)
