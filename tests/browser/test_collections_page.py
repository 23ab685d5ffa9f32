"""Several documents as the scope of a question, in a real Chromium against the running API and worker:
checked documents gathered into a collection, a question across it with its job card, citations that
name their document and open it in the reader, and the collection view on a phone and under axe."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.browser.conftest import api_client
from tests.browser.test_page import JOB_TIMEOUT_MS, _expect, _sign_in
from tests.browser.test_reading_room import _document, _overflow, _small_targets
from tests.service.conftest import SLOW_MODEL, needle_document, wait_job

pytestmark = pytest.mark.browser

QUESTION = "What is the vault code?"


def _two_documents(http: httpx.Client, code: int) -> tuple[str, str]:
    holder = _document(http, needle_document(code, paragraphs=10, seed=1), "vault.txt")
    plain = needle_document(11, paragraphs=10, seed=2).replace("vault code", "gate number")
    return holder, _document(http, plain, "gate.txt")


def test_checked_documents_become_a_collection_whose_citations_open_their_document(
    page: Any, site: str, new_key: Callable[[str], str]
) -> None:
    from axe_playwright_python.sync_playwright import Axe

    expect = _expect()
    key = new_key("shelf")
    code = random.randint(10_000, 99_999)
    with api_client(site, key) as http:
        holder, plain = _two_documents(http, code)
    _sign_in(page, key)
    ask = page.get_by_role("button", name="Ask across the checked documents")
    expect(ask).to_be_disabled()
    page.get_by_label("Include vault.txt in a question across documents").check()
    page.get_by_label("Include gate.txt in a question across documents").check()
    expect(page.locator("#scope-status")).to_contain_text("2 documents checked")
    ask.click()

    section = page.locator("#collection")
    expect(section).to_be_visible()
    expect(page.locator("#document")).to_be_hidden()
    expect(page.locator("#collection-title")).to_contain_text("vault.txt")
    expect(page.locator("#collection-documents .link")).to_have_text(["vault.txt", "gate.txt"])
    expect(page.locator("#collections-list .collection-open")).to_have_count(1)
    expect(page.locator(".document-check:checked")).to_have_count(0)  # the selection became the collection
    assert re.match(r"^#collection=", page.evaluate("location.hash"))
    collection_id = page.evaluate("decodeURIComponent(location.hash.split('=')[1])")
    with api_client(site, key) as http:
        stored = http.get(f"/v1/collections/{collection_id}").json()
        assert sorted(d["document_id"] for d in stored["documents"]) == sorted([holder, plain])
        for entry in stored.get("indexing", []):
            wait_job(http, entry["job_id"])

    page.get_by_label("Ask the collection").fill(QUESTION)
    page.get_by_label("Read with").select_option("dense")
    page.locator("#collection-ask-button").click()
    pending = page.locator("#collection-thread .turn.pending")
    expect(pending.locator(".turn-question")).to_have_text(QUESTION)
    expect(pending.locator(".job")).to_have_attribute("data-job-id", re.compile(r".+"))
    answer = page.locator("#collection-thread .turn .answer")
    expect(answer.locator(".answer-text")).to_contain_text(str(code), timeout=JOB_TIMEOUT_MS)
    expect(pending).to_have_count(0)
    expect(answer.locator(".strategy-name")).to_have_text("dense")

    with api_client(site, key) as http:
        listed = http.get(f"/v1/collections/{collection_id}/answers").json()
    citations = listed[0]["citations"]
    assert citations and all(c["filename"] in {"vault.txt", "gate.txt"} for c in citations), citations
    first = citations[0]
    assert first["document_id"] == holder and str(code) in first["quote"], first
    # Each citation names the document it is from.
    expect(answer.locator(".citations .citation-document")).to_have_text([c["filename"] for c in citations])

    answer.locator(".citations .citation").first.click()
    reader = page.locator("#reader")
    expect(reader.locator("#reader-title")).to_have_text("Source: vault.txt")
    expect(reader.locator("#reader-meta")).to_contain_text("vault.txt")
    current = reader.locator("mark.current")
    expect(current).to_have_text(first["quote"])
    expect(current).to_be_in_viewport()
    expect(reader.locator("#reader-warning")).to_be_hidden()  # the stored text matches the quote
    reader.get_by_role("button", name="Close").click()

    # The answer's own [n] marks open the same place.
    answer.locator(".cite-ref").first.click()
    expect(reader.locator("#reader-title")).to_have_text(re.compile(r"^Source: (vault|gate)\.txt$"))
    expect(reader.locator("mark.current")).to_be_visible()
    reader.get_by_role("button", name="Close").click()

    # A reload reopens the collection with its answer.
    page.reload()
    expect(page.locator("#collection-title")).to_contain_text("vault.txt")
    expect(page.locator("#collection-thread .turn .turn-question")).to_have_text([QUESTION])
    expect(answer.locator(".answer-text")).to_contain_text(str(code))

    # Members change from the collection's view: one removed, then the checked documents added back (a
    # document that left its last collection lost its index, so its index job shows until it is built).
    page.get_by_role("button", name="Remove gate.txt from this collection").click()
    expect(page.locator("#collection-documents .link")).to_have_text(["vault.txt"])
    expect(page.locator("#collection-meta")).to_contain_text("1 document ·")
    add = page.get_by_role("button", name="Add the checked documents")
    expect(add).to_be_hidden()
    page.get_by_label("Include gate.txt in a question across documents").check()
    add.click()
    expect(page.locator("#collection-documents .link")).to_have_text(["vault.txt", "gate.txt"])
    expect(page.locator("#collections-list .document-meta")).to_have_text(["2 documents"])
    expect(page.locator("#collection-indexing .job")).to_have_count(0, timeout=JOB_TIMEOUT_MS)
    expect(add).to_be_hidden()

    axe = Axe()
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        results = axe.run(page)
        assert results.violations_count == 0, f"{scheme}: {results.generate_report()}"
    answer.locator(".citations .citation").first.click()
    expect(reader.locator("mark.current")).to_be_visible()
    results = axe.run(page)
    assert results.violations_count == 0, results.generate_report()
    reader.get_by_role("button", name="Close").click()

    # A follow-up joins the open thread (the page sends its conversation); "New" starts another one.
    follow_up = "And which document holds it?"
    page.get_by_label("Ask the collection").fill(follow_up)
    page.get_by_label("Read with").select_option("dense")
    page.locator("#collection-ask-button").click()
    answered = page.locator("#collection-thread .turn:not(.pending) .turn-question")
    expect(answered).to_have_text([QUESTION, follow_up], timeout=JOB_TIMEOUT_MS)
    with api_client(site, key) as http:
        threads = http.get(f"/v1/collections/{collection_id}/conversations").json()
    assert [t["turns"] for t in threads] == [2], threads
    expect(page.locator("#collection-thread-select option:checked")).to_contain_text("(2)")
    page.get_by_role("button", name="New conversation about the collection").click()
    expect(page.locator("#collection-thread .turn")).to_have_count(0)
    expect(page.locator("#collection-empty")).to_be_visible()
    page.get_by_label("Collection thread").select_option(threads[0]["id"])
    expect(answered).to_have_text([QUESTION, follow_up])

    # Opening one of its documents leaves the collection for that document's own conversation.
    page.locator("#collection-documents .link", has_text="gate.txt").click()
    expect(page.locator("#document-title")).to_have_text("gate.txt")
    expect(section).to_be_hidden()


def test_a_collection_question_can_be_canceled_and_the_view_fits_a_phone(
    phone: Any, site: str, new_key: Callable[[str], str]
) -> None:
    expect = _expect()
    key = new_key("shelf-phone")
    code = random.randint(10_000, 99_999)
    with api_client(site, key) as http:
        holder, plain = _two_documents(http, code)
        created = http.post(
            "/v1/collections",
            json={"name": "a rather long collection name for a phone", "document_ids": [holder, plain]},
        ).json()
        for entry in created["indexing"]:
            wait_job(http, entry["job_id"])
        done = http.post(
            f"/v1/collections/{created['id']}/questions",
            params={"wait": 30},
            json={"question": QUESTION, "strategy": "dense"},
        ).json()
        assert done["status"] == "succeeded", done
    _sign_in(phone, key)
    phone.locator("#collections-list .collection-open").tap()
    expect(phone.locator("#collection-title")).to_be_in_viewport()
    answer = phone.locator("#collection-thread .turn .answer")
    expect(answer.locator(".citation-document").first).to_have_text("vault.txt")
    assert _overflow(phone, 390) <= 0
    assert _small_targets(phone) == []

    # The same job card as a document's question: a question read by the tree strategy with the slow model
    # (which the page does not offer, so asked through the API) shows its progress and stops when canceled.
    with api_client(site, key) as http:
        slow = http.post(
            f"/v1/collections/{created['id']}/questions",
            json={"question": "Where is the vault?", "strategy": "tree", "model": SLOW_MODEL},
        ).json()
    phone.reload()
    card = phone.locator(f'#collection-thread .job[data-job-id="{slow["id"]}"]')
    expect(card.locator(".job-cancel")).to_be_visible()
    card.locator(".job-cancel").tap()
    expect(card).to_have_attribute("data-status", "canceled", timeout=JOB_TIMEOUT_MS)
    unanswered = phone.locator("#collection-thread .turn.unanswered")
    expect(unanswered.locator(".job-note")).to_contain_text("Canceled")
    assert _overflow(phone, 390) <= 0
