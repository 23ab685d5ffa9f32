"""Screenshots of the page's main views for the README, taken from the real stack (scripts/screenshots.sh).

Skipped unless LONGREAD_SCREENSHOTS names the folder to write into, so the test run stays fast; the
script sets it, saves the PNGs and rewrites the README's marked screenshot section.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from longread.testing.factories import document_with_facts
from tests.browser.conftest import BROKEN_MODEL, CITE_ALL_MODEL, PHONE, api_client, open_tab
from tests.browser.test_page import _expect, _sign_in
from tests.browser.test_reading_room import _ask, _document, _open
from tests.service.conftest import REPO, wait_job

pytestmark = pytest.mark.browser

OUT = os.environ.get("LONGREAD_SCREENSHOTS")
VIEWS = (
    ("page-conversation.png", "A conversation about a document: the answer with its citations and the tree walk"),
    ("page-reader.png", "The source reader: every citation highlighted, next and previous citation"),
    ("page-phone.png", "At 390 px wide"),
    ("page-dark-failure.png", "Dark mode, and a failed model call told in one sentence with its code"),
)


@pytest.mark.skipif(not OUT, reason="set LONGREAD_SCREENSHOTS=docs/img (scripts/screenshots.sh)")
def test_screenshots(browser: Any, site: str, new_key: Callable[[str], str]) -> None:
    expect = _expect()
    out = Path(str(OUT))
    out.mkdir(parents=True, exist_ok=True)
    key = new_key("screenshots")
    text = document_with_facts(
        30,
        {4: "The vault code is 48213.", 26: "The spare vault code is 90577."},
        seed=11,
    )
    with api_client(site, key) as http:
        doc_id = _document(http, text, "harbour-logbook.txt")
        first = _ask(http, doc_id, "Which vault codes does the logbook give?", strategy="full", model=CITE_ALL_MODEL)
        wait_job(http, first["id"])
        tree = _ask(
            http, doc_id, "What is the vault code?", strategy="tree", conversation_id=first["params"]["conversation_id"]
        )
        wait_job(http, tree["id"])

    context, page, errors = open_tab(browser, site)
    _sign_in(page, key)
    _open(page, "harbour-logbook.txt")
    turns = page.locator("#thread .turn .answer")
    expect(turns).to_have_count(2)
    turns.nth(1).locator(".trace > summary").click()
    page.locator("#thread").scroll_into_view_if_needed()
    page.screenshot(path=out / VIEWS[0][0], full_page=True)
    turns.first.locator(".cite-ref").first.click()
    page.get_by_role("button", name="Next citation").click()
    expect(page.locator("#reader mark.current")).to_contain_text("90577")
    page.screenshot(path=out / VIEWS[1][0])
    context.close()
    assert not errors, errors

    context, phone, _errors = open_tab(
        browser, site, viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2
    )
    _sign_in(phone, key)
    phone.locator("#documents-list .document-open").first.tap()
    expect(phone.locator("#thread .turn .answer").first).to_be_visible()
    phone.screenshot(path=out / VIEWS[2][0])
    context.close()

    with api_client(site, key) as http:
        wait_job(http, _ask(http, doc_id, "Who keeps the spare code?", strategy="full", model=BROKEN_MODEL)["id"])
    context, dark, _errors = open_tab(browser, site, color_scheme="dark")
    _sign_in(dark, key)
    _open(dark, "harbour-logbook.txt")
    failed = dark.locator('#thread .job[data-status="failed"]')
    expect(failed).to_be_visible()
    failed.scroll_into_view_if_needed()
    dark.screenshot(path=out / VIEWS[3][0])
    context.close()

    readme = REPO / "README.md"
    images = "\n".join(f"![{alt}]({out.relative_to(REPO) if out.is_absolute() else out}/{name})" for name, alt in VIEWS)
    section = f"<!-- screenshots:page -->\n{images}\n\nRegenerate with `bash scripts/screenshots.sh`.\n<!-- /screenshots:page -->"
    body = readme.read_text(encoding="utf-8")
    readme.write_text(
        re.sub(r"<!-- screenshots:page -->.*?<!-- /screenshots:page -->", lambda _m: section, body, flags=re.S),
        encoding="utf-8",
    )
