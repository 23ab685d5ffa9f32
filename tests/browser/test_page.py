"""The web page in a real Chromium against the real API, worker, Redis and SQLite."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.browser.conftest import UPLOAD_LIMIT, api_client
from tests.service.conftest import needle_document, wait_job

pytestmark = pytest.mark.browser

JOB_TIMEOUT_MS = 90_000


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def _sign_in(page: Any, key: str) -> None:
    page.goto("/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Save key").click()
    _expect()(page.locator("#key-status")).to_have_text("Key saved in this browser.")


def _upload(page: Any, *files: tuple[str, str, bytes]) -> None:
    page.locator("#file-input").set_input_files(
        [{"name": name, "mimeType": mime, "buffer": data} for name, mime, data in files]
    )


def _drop(page: Any, name: str, mime: str, data: bytes) -> None:
    """Drag a file over the drop zone (it lights up) and drop it, as a user dragging from the desktop."""
    transfer = page.evaluate_handle(
        """([name, mime, text]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([text], name, {type: mime}));
            return transfer;
        }""",
        [name, mime, data.decode()],
    )
    zone = page.locator("#drop-zone")
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    _expect()(zone).to_have_class(re.compile(r"\bdragging\b"))
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    _expect()(zone).not_to_have_class(re.compile(r"\bdragging\b"))


def test_upload_ask_and_open_the_cited_evidence(page: Any, site: str, new_key: Callable[[str], str]) -> None:
    expect = _expect()
    key = new_key("reader")
    _sign_in(page, key)
    code = random.randint(10_000, 99_999)
    planted = f"The vault code is {code}."
    _upload(page, ("vault.txt", "text/plain", needle_document(code, paragraphs=16).encode()))

    # The upload opens the document and follows its ingest job to the end.
    expect(page.locator("#document-title")).to_have_text("vault.txt")
    expect(page.locator("#documents-list .document-open")).to_have_text(["vault.txt"])
    ingest = page.locator("#ingest-job .job")
    expect(ingest).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(ingest.locator(".job-status")).to_have_text("Done")
    bar = ingest.locator("progress")
    assert bar.evaluate("b => b.value === b.max && b.max > 0")
    with api_client(site, key) as http:  # the page shows the job as the API reports it
        job = http.get(f"/v1/jobs/{ingest.get_attribute('data-job-id')}").json()
    expect(ingest.locator(".job-line")).to_have_text(f"{job['stage']} · {job['done']} / {job['total']}")

    # Ask with an explicit strategy; the job's progress shows, then the answer with its strategy.
    page.get_by_label("Ask a question").fill("What is the vault code?")
    page.get_by_label("Strategy", exact=True).select_option("tree")
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(page.get_by_label("Ask a question")).to_have_value("")  # the question moved into the thread
    answer = page.locator("#thread .turn .answer")
    expect(answer).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#thread .turn.pending")).to_have_count(0)
    # Followed over Server-Sent Events (the answered turn keeps how its job was followed).
    expect(page.locator("#thread .turn").first).to_have_attribute("data-transport", "events")
    expect(page.locator("#thread .turn .turn-question")).to_have_text("What is the vault code?")
    expect(answer.locator(".answer-stats")).to_contain_text(re.compile(r"[1-9]\d* LLM calls?"))
    expect(answer.locator(".answer-text")).to_contain_text(str(code))
    expect(answer.locator(".strategy-name")).to_have_text("tree")
    expect(answer.locator(".strategy-reason")).not_to_be_empty()
    expect(answer.locator(".citations .citation").first).to_contain_text(planted)
    # The trace shows the path the tree walk took, with the model's reason at each step.
    answer.locator(".trace > summary").click()
    steps = answer.locator(".trace-tree .trace-step")
    expect(steps.first).to_be_visible()
    expect(answer.locator(".trace-step.action-answer .trace-action")).to_contain_text("Answered from passage S")
    expect(steps.first.locator(".trace-reason")).not_to_be_empty()
    # Figures say what they count: the job also built the summary tree, the answer only walked it.
    expect(answer.locator(".answer-stats")).to_have_attribute("data-includes-build", "true")
    expect(answer.locator(".answer-stats")).to_contain_text("whole job, including building the summary tree")

    # The inline citation opens the source reader on the document text, the quote highlighted.
    answer.locator(".answer-text .cite-ref").first.click()
    dialog = page.locator("#reader")
    expect(dialog).to_be_visible()
    mark = dialog.locator("mark.current")
    expect(mark).to_have_text(planted)
    expect(mark).to_be_in_viewport()
    expect(dialog.locator("#reader-warning")).to_be_hidden()
    around = dialog.locator("#reader-text").inner_text()
    assert len(around) > len(planted) + 200 and around.count(planted) == 1
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # A summary runs as a background job and shows its result.
    page.get_by_role("button", name="Summarize").click()
    summary_job = page.locator("#summary-job .job")
    expect(summary_job).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#summary .answer-text")).to_contain_text(str(code))
    expect(page.locator("#summary .strategy-name")).to_have_text("tree")


def test_rejected_uploads_show_the_api_error(page: Any, site: str, new_key: Callable[[str], str]) -> None:
    expect = _expect()
    key = new_key("careless")
    broken = b"%PDF-1.7\nthis is not really a PDF document\n"
    oversize = b"a" * (UPLOAD_LIMIT + 1)
    with api_client(site, key) as http:  # what the API says about these files, to compare with the page
        refused = http.post("/v1/documents", files={"file": ("broken.pdf", broken, "application/pdf")})
    assert refused.status_code == 422, refused.text
    message = refused.json()["error"]["message"]

    _sign_in(page, key)
    _upload(page, ("broken.pdf", "application/pdf", broken), ("huge.txt", "text/plain", oversize))
    errors = page.locator("#upload-error")
    expect(errors.locator(".upload-failure")).to_have_count(2)
    first, second = errors.locator(".upload-failure").nth(0), errors.locator(".upload-failure").nth(1)
    expect(first.locator(".error-title")).to_have_text("Could not upload broken.pdf:")
    expect(first.locator(".error-message")).to_have_text(message)
    expect(first.locator(".error-code")).to_have_text("unreadable_document (HTTP 422)")
    expect(second.locator(".error-message")).to_have_text(f"the upload exceeds the {UPLOAD_LIMIT}-byte limit")
    expect(second.locator(".error-code")).to_have_text("payload_too_large (HTTP 413)")
    rows = page.locator("#upload-list .upload-row")  # each file of the upload keeps its own status
    expect(rows.locator(".upload-name")).to_have_text(["broken.pdf", "huge.txt"])
    expect(rows.locator(".upload-state")).to_have_text(["not uploaded", "not uploaded"])
    expect(page.locator("#documents-empty")).to_be_visible()
    expect(page.locator("#document")).to_be_hidden()


def test_missing_and_wrong_keys_are_explained(page: Any, site: str) -> None:
    expect = _expect()
    page.goto("/")
    expect(page.locator("#health")).to_have_text("service ready")
    expect(page.locator("#documents-error .error-code")).to_have_text("missing_api_key (HTTP 401)")
    expect(page.locator("#documents-error .error-message")).to_contain_text("enter it at the top")
    page.get_by_label("API key").fill("lr_not-a-real-key")
    page.get_by_role("button", name="Save key").click()
    expect(page.locator("#documents-error .error-message")).to_contain_text("the API key is unknown or revoked")


def test_pages_through_documents_and_deletes_one(page: Any, site: str, new_key: Callable[[str], str]) -> None:
    expect = _expect()
    key = new_key("librarian")
    with api_client(site, key) as http:  # eleven small documents: two pages of ten
        stamp = random.randint(10_000, 99_999)
        jobs = []
        for i in range(11):
            body = http.post(
                "/v1/documents",
                files={
                    "file": (f"note-{i:02d}.txt", f"Note {i} of batch {stamp}. It is short.".encode(), "text/plain")
                },
            ).json()
            jobs.append(body["job_id"])
        for job_id in jobs:
            assert wait_job(http, job_id)["status"] == "succeeded"

    _sign_in(page, key)
    names = page.locator("#documents-list .document-open")
    expect(names).to_have_count(10)
    expect(page.locator("#documents-count")).to_have_text("1–10 of 11")
    expect(page.locator("#page-prev")).to_be_disabled()
    page.get_by_role("button", name="Next").click()
    expect(names).to_have_count(1)
    expect(page.locator("#documents-count")).to_have_text("11–11 of 11")
    last = names.first.inner_text()

    # A question typed for one document does not follow the reader to the next one.
    names.first.click()
    page.get_by_label("Ask a question").fill("Half-typed question about this note")
    page.get_by_role("button", name="Previous").click()
    names.nth(3).click()
    expect(page.locator("#document-title")).to_have_text(names.nth(3).inner_text())
    expect(page.get_by_label("Ask a question")).to_have_value("")
    page.get_by_role("button", name="Next").click()
    expect(names).to_have_count(1)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {last}").click()
    expect(page.locator("#upload-status")).to_have_text(f"{last} deleted.")
    expect(page.locator("#documents-count")).to_have_text("1–10 of 10")  # the emptied page steps back
    expect(page.get_by_role("button", name=last, exact=True)).to_have_count(0)
    with api_client(site, key) as http:
        listed = http.get("/v1/documents", params={"limit": 100}).json()
    assert listed["total"] == 10 and last not in {d["filename"] for d in listed["items"]}


def test_dropped_file_polling_progress_and_auto_strategy(page: Any, site: str, new_key: Callable[[str], str]) -> None:
    expect = _expect()
    page.add_init_script("delete window.EventSource")  # as behind a proxy that breaks event streams
    key = new_key("no-streams")
    _sign_in(page, key)
    code = random.randint(10_000, 99_999)
    text = needle_document(code, paragraphs=4).encode()
    _drop(page, "short.md", "text/markdown", text)
    expect(page.locator("#document-title")).to_have_text("short.md")
    ingest = page.locator("#ingest-job .job")
    expect(ingest).to_have_attribute("data-status", "succeeded", timeout=JOB_TIMEOUT_MS)

    page.get_by_label("Ask a question").fill("What is the vault code?")
    page.get_by_role("button", name="Ask", exact=True).click()  # strategy left at auto
    answer = page.locator("#thread .turn .answer")
    expect(answer).to_be_visible(timeout=JOB_TIMEOUT_MS)
    # The job was followed by polling: a short job may end before its pending card can be seen,
    # so the answered turn keeps the transport it was followed with.
    expect(page.locator("#thread .turn").first).to_have_attribute("data-transport", "polling")
    with api_client(site, key) as http:
        document_id = http.get("/v1/documents").json()["items"][0]["id"]
        stored = http.get(f"/v1/documents/{document_id}/answers").json()[0]
    assert stored["strategy"] != "auto" and stored["strategy_reason"]
    expect(answer.locator(".strategy-name")).to_have_text(stored["strategy"])
    expect(answer.locator(".strategy-reason")).to_have_text(f" ({stored['strategy_reason']})")
    expect(answer.locator(".answer-text")).to_contain_text(str(code))
    expect(answer.locator(".citations li")).to_have_count(len(stored["citations"]))

    # The same content again opens the existing document; a reload keeps the open document.
    _upload(page, ("copy.md", "text/markdown", text))
    expect(page.locator("#upload-status")).to_have_text("copy.md was uploaded before: opened the existing document.")
    expect(page.locator("#documents-list .document-open")).to_have_text(["short.md"])
    page.reload()
    expect(page.locator("#document-title")).to_have_text("short.md")
    expect(page.locator("#documents-list [aria-current=true] .document-open")).to_have_text("short.md")
    expect(page.locator("#history-list li")).to_have_count(1)
    expect(page.locator("#thread .turn .answer-text")).to_contain_text(str(code))  # the thread is back too
