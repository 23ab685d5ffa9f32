"""Test documents: long filler text with facts planted at chosen places."""

from __future__ import annotations

import random

TOPICS = [
    "The committee reviewed the annual budget and discussed the maintenance of public roads",
    "Farmers in the valley described a dry summer and the slow recovery of the river",
    "The museum opened a new wing devoted to maritime history and old navigation tools",
    "Teachers proposed longer reading hours and a shared library for the northern schools",
    "Engineers inspected the old bridge and recommended replacing several steel beams",
    "Merchants complained about the price of grain and the delays at the eastern market",
    "The choir rehearsed every evening for the festival held at the end of autumn",
    "Doctors at the clinic noted fewer winter colds thanks to better heating in homes",
]


def filler(n_sentences: int, seed: int = 0) -> list[str]:
    """Plausible sentences without digits, so planted facts are the only numbers in the text."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_sentences):
        topic = rng.choice(TOPICS)
        tail = rng.choice(["in detail", "at length", "without haste", "with some concern", "over several meetings"])
        out.append(f"{topic} {tail}.")
    return out


def document_with_facts(
    n_paragraphs: int, facts: dict[int, str], seed: int = 0, sentences_per_paragraph: int = 8
) -> str:
    """Paragraphs of filler; `facts` maps a paragraph number to a sentence planted in its middle."""
    paragraphs = []
    sentences = filler(n_paragraphs * sentences_per_paragraph, seed)
    for p in range(n_paragraphs):
        chunk = sentences[p * sentences_per_paragraph : (p + 1) * sentences_per_paragraph]
        if p in facts:
            chunk.insert(len(chunk) // 2, facts[p])
        paragraphs.append(" ".join(chunk))
    return "\n\n".join(paragraphs)


def pdf_with_pages(pages: list[list[str]]) -> bytes:
    """A PDF with one page per entry, each page holding its paragraphs (fpdf2, a development dependency).

    Pages start with a page break of their own, so a page's text never spills onto the next one as long
    as it fits (a few paragraphs of `document_with_facts` do).
    """
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    for paragraphs in pages:
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 5, paragraph)
            pdf.ln(3)
    return bytes(pdf.output())
