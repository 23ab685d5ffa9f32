"""The page as a reading room, in a real Chromium: jobs that survive a reload, failures told without
internals, a conversation per document, the source reader, the phone layout and accessibility."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from longread.testing.factories import document_with_facts, pdf_with_pages
from tests.browser.conftest import BROKEN_MODEL, CITE_ALL_MODEL, STREAM_MODEL, api_client
from tests.browser.test_page import JOB_TIMEOUT_MS, _expect, _sign_in
from tests.service.conftest import SLOW_MODEL, needle_document, upload, wait_job

pytestmark = pytest.mark.browser

LEAKS = ("Traceback", 'File "', "/srv/", "site-packages", "litellm", "github.com", "10.0.0.7", BROKEN_MODEL)


def _document(http: httpx.Client, text: str, name: str) -> str:
    body = upload(http, text, name).json()
    assert wait_job(http, body["job_id"])["status"] == "succeeded"
    return str(body["document_id"])


def _ask(http: httpx.Client, doc_id: str, question: str, **body: Any) -> dict[str, Any]:
    response = http.post(f"/v1/documents/{doc_id}/questions", json={"question": question, **body})
    assert response.status_code in (200, 202), response.text
    return dict(response.json())


def _open(page: Any, name: str) -> None:
    page.locator("#documents-list .document-open", has_text=name).click()
    _expect()(page.locator("#document-title")).to_have_text(name)


def _two_codes(first: int, second: int) -> str:
    """A document whose two planted facts lie more than a reader page (6,000 characters) apart."""
    return document_with_facts(30, {1: f"The vault code is {first}.", 28: f"The vault code is {second}."}, seed=3)


def test_a_reload_mid_job_keeps_the_question_and_shows_the_answer(
    page: Any, site: str, new_key: Callable[[str], str]
) -> None:
    expect = _expect()
    key = new_key("reloader")
    code = random.randint(10_000, 99_999)
    question = "What is the vault code?"
    with api_client(site, key) as http:
        doc_id = _document(http, needle_document(code, paragraphs=16), "slow.txt")
        job = _ask(http, doc_id, question, strategy="tree", model=SLOW_MODEL)  # the tree build takes seconds
    _sign_in(page, key)
    _open(page, "slow.txt")
    pending = page.locator("#thread .turn.pending")
    expect(pending.locator(".turn-question")).to_have_text(question)
    expect(pending.locator(".job")).to_have_attribute("data-job-id", job["id"])

    page.reload()
    expect(page.locator("#document-title")).to_have_text("slow.txt")
    expect(page.get_by_label("Ask a question")).to_have_value("")
    expect(pending.locator(".turn-question")).to_have_text(question)
    card = pending.locator(".job")
    expect(card).to_have_attribute("data-job-id", job["id"])
    expect(card).to_have_attribute("data-transport", "events")
    expect(card).to_have_attribute("data-status", "running", timeout=JOB_TIMEOUT_MS)
    # The badge and the stage agree: a running job never reads "queued".
    assert not card.locator(".job-line").inner_text().startswith("queued")

    answer = page.locator("#thread .turn .answer")
    expect(answer.locator(".answer-text")).to_contain_text(str(code), timeout=JOB_TIMEOUT_MS)
    expect(pending).to_have_count(0)
    expect(page.locator("#thread .turn .turn-question")).to_have_text([question])


def test_a_model_failure_shows_a_safe_message_and_a_cancel_is_no_error(
    page: Any, site: str, new_key: Callable[[str], str]
) -> None:
    expect = _expect()
    key = new_key("unlucky")
    with api_client(site, key) as http:
        doc_id = _document(http, needle_document(random.randint(10_000, 99_999)), "fragile.txt")
        failed = _ask(http, doc_id, "What is the vault code?", strategy="full", model=BROKEN_MODEL)
        stored = wait_job(http, failed["id"])
    assert stored["status"] == "failed" and stored["error_code"] == "model_unavailable", stored
    assert not any(leak in stored["error"] for leak in LEAKS), stored["error"]

    _sign_in(page, key)
    _open(page, "fragile.txt")
    turn = page.locator("#thread .turn", has=page.locator(f'[data-job-id="{failed["id"]}"]'))
    expect(turn.locator(".turn-question")).to_have_text("What is the vault code?")
    card = turn.locator(".job")
    expect(card).to_have_attribute("data-status", "failed")
    expect(card.locator(".job-error .error-message")).to_have_text(stored["error"])
    expect(card.locator(".job-error .error-code")).to_have_text("model_unavailable")
    shown = page.locator("#document").inner_text()
    assert not any(leak in shown for leak in LEAKS), shown
    assert card.locator("progress").evaluate("b => b.hasAttribute('value')")  # the bar stands still

    # A question the user cancels ends as canceled, said calmly, with no error box.
    page.get_by_label("Ask a question").fill("Where is the vault?")
    with api_client(site, key) as http:  # the slow model, which the page does not offer, via the API
        slow = _ask(
            http,
            doc_id,
            "Where is the vault?",
            strategy="tree",
            model=SLOW_MODEL,
            conversation_id=failed["params"]["conversation_id"],
        )
    page.reload()
    slow_card = page.locator(f'#thread .job[data-job-id="{slow["id"]}"]')
    expect(slow_card.locator(".job-cancel")).to_be_visible()
    slow_card.locator(".job-cancel").click()
    expect(slow_card).to_have_attribute("data-status", "canceled", timeout=JOB_TIMEOUT_MS)
    expect(slow_card.locator(".job-note")).to_contain_text("Canceled")
    expect(slow_card.locator(".job-error")).to_be_empty()
    assert slow_card.locator("progress").evaluate("b => b.hasAttribute('value')")


def test_the_reader_steps_from_citation_to_citation(page: Any, site: str, new_key: Callable[[str], str]) -> None:
    expect = _expect()
    key = new_key("reader")
    first, second = random.randint(10_000, 49_999), random.randint(50_000, 99_999)
    with api_client(site, key) as http:
        doc_id = _document(http, _two_codes(first, second), "codes.txt")
        job = wait_job(
            http, _ask(http, doc_id, "Which vault codes are there?", strategy="full", model=CITE_ALL_MODEL)["id"]
        )
        answer = http.get(f"/v1/answers/{job['result_id']}").json()
    quotes = [c["quote"] for c in sorted(answer["citations"], key=lambda c: c["start"])]
    assert len(quotes) == 2 and str(first) in quotes[0] and str(second) in quotes[1], answer

    _sign_in(page, key)
    _open(page, "codes.txt")
    shown = page.locator("#thread .turn .answer")
    expect(shown.locator(".answer-text li strong")).to_have_text([str(first), str(second)])  # Markdown
    shown.locator(".cite-ref").first.click()
    reader = page.locator("#reader")
    current = reader.locator("mark.current")
    expect(current).to_have_text(quotes[0])
    expect(current).to_be_in_viewport()
    expect(reader.locator("#reader-position")).to_have_text("Citation 1 of 2")
    expect(reader.locator("#reader-page")).to_have_text(re.compile(r"^Page 1 of [3-9]"))
    expect(reader.get_by_role("button", name="Previous citation")).to_be_disabled()

    reader.get_by_role("button", name="Next citation").click()
    expect(current).to_have_text(quotes[1])
    expect(current).to_be_in_viewport()
    expect(reader.locator("#reader-position")).to_have_text("Citation 2 of 2")
    expect(reader.locator("#reader-page")).not_to_have_text(re.compile(r"^Page 1 of"))
    expect(reader.get_by_role("button", name="Next citation")).to_be_disabled()

    reader.get_by_role("button", name="Previous citation").click()
    expect(current).to_have_text(quotes[0])
    reader.get_by_role("button", name="Next page").click()  # the whole text pages on, past the citations
    expect(reader.locator("#reader-page")).to_have_text(re.compile(r"^Page 2 of"))
    expect(reader.locator("#reader-text")).not_to_be_empty()


def test_answers_render_markdown_without_raw_html(page: Any, site: str) -> None:
    page.goto("/")
    html = page.evaluate(
        """async () => {
            const { renderMarkdown } = await import('/markdown.js');
            const box = document.createElement('div');
            box.append(renderMarkdown('**bold** <img src=x onerror="window.hit=1"> [x](javascript:alert(1))\\n\\n- a\\n- b'));
            return box.innerHTML;
        }"""
    )
    assert "<strong>bold</strong>" in html and "<li>a</li>" in html
    assert "<img" not in html and "&lt;img" in html and "href" not in html
    assert page.evaluate("window.hit") is None


def _overflow(tab: Any, width: int) -> int:
    """How far the page is wider than the screen: a phone browser widens its layout to the widest element."""
    over = int(tab.evaluate("Math.max(document.documentElement.scrollWidth, window.innerWidth)")) - width
    if over > 0:  # name the culprits in the failure
        wide = tab.evaluate(
            f"""() => [...document.querySelectorAll('body *')].filter(el => el.getBoundingClientRect().right > {width})
                .map(el => `${{el.tagName}}#${{el.id}}.${{el.className}} ${{Math.round(el.getBoundingClientRect().right)}}`)
                .slice(0, 12)"""
        )
        print("wider than the screen:", wide)
    return over


def _small_targets(tab: Any) -> list[str]:
    return list(
        tab.evaluate(
            """() => [...document.querySelectorAll('button, select, input:not([type=file]), summary, a[href]')]
                .filter(el => el.offsetParent !== null && !el.closest('dialog:not([open])'))
                .filter(el => { const r = el.getBoundingClientRect(); return r.right > 0 && r.bottom > -window.scrollY; })
                .filter(el => { const r = el.getBoundingClientRect(); return r.width < 44 || r.height < 44; })
                .map(el => `${el.tagName} ${el.id || el.className} ${el.textContent.trim().slice(0, 30)}`)"""
        )
    )


def test_phone_layout(phone: Any, site: str, new_key: Callable[[str], str]) -> None:
    expect = _expect()
    key = new_key("phone")
    first, second = random.randint(10_000, 49_999), random.randint(50_000, 99_999)
    with api_client(site, key) as http:
        doc_id = _document(http, _two_codes(first, second), "a-rather-long-file-name-for-a-small-screen.txt")
        wait_job(http, _ask(http, doc_id, "Which vault codes are there?", strategy="full", model=CITE_ALL_MODEL)["id"])
    _sign_in(phone, key)
    assert _overflow(phone, 390) <= 0
    phone.locator("#documents-list .document-open").first.tap()
    title = phone.locator("#document-title")
    expect(title).to_be_in_viewport()  # opening a document brings it into view
    answer = phone.locator("#thread .turn .answer")
    expect(answer.locator(".cite-ref").first).to_be_visible()
    assert _overflow(phone, 390) <= 0
    assert _small_targets(phone) == []

    answer.locator(".cite-ref").first.tap()
    reader = phone.locator("#reader")
    expect(reader.locator("mark.current")).to_be_in_viewport()
    box = reader.bounding_box()
    assert box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= 390.5 and box["y"] + box["height"] <= 844.5
    reader.get_by_role("button", name="Next citation").tap()
    expect(reader.locator("mark.current")).to_contain_text(str(second))
    reader.get_by_role("button", name="Close").tap()

    phone.set_viewport_size({"width": 360, "height": 740})
    assert _overflow(phone, 360) <= 0
    assert _small_targets(phone) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_violations(page: Any, site: str, new_key: Callable[[str], str], scheme: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    expect = _expect()
    key = new_key(f"axe-{scheme}")
    with api_client(site, key) as http:
        doc_id = _document(http, _two_codes(11_111, 22_222), "access.txt")
        wait_job(http, _ask(http, doc_id, "Which vault codes are there?", strategy="full", model=CITE_ALL_MODEL)["id"])
    page.emulate_media(color_scheme=scheme)
    _sign_in(page, key)
    _open(page, "access.txt")
    answer = page.locator("#thread .turn .answer")
    expect(answer.locator(".cite-ref").first).to_be_visible()
    answer.locator(".trace > summary").click()
    axe = Axe()
    results = axe.run(page)
    assert results.violations_count == 0, results.generate_report()

    answer.locator(".cite-ref").first.click()  # the reader with its highlights
    expect(page.locator("#reader mark.current")).to_be_visible()
    results = axe.run(page)
    assert results.violations_count == 0, results.generate_report()


def test_a_follow_up_continues_the_thread_and_exports_it(page: Any, site: str, new_key: Callable[[str], str]) -> None:
    expect = _expect()
    key = new_key("curious")
    code = random.randint(10_000, 99_999)
    with api_client(site, key) as http:
        _document(http, needle_document(code, paragraphs=6), "thread.txt")
    _sign_in(page, key)
    _open(page, "thread.txt")
    ask = page.get_by_label("Ask a question")
    ask.fill("What is the vault code?")
    page.get_by_label("Strategy", exact=True).select_option("bm25")
    page.get_by_role("button", name="Ask", exact=True).click()
    turns = page.locator("#thread .turn")
    expect(turns.locator(".answer-text")).to_contain_text(str(code), timeout=JOB_TIMEOUT_MS)

    ask.fill("Repeat it, please.")
    page.get_by_role("button", name="Ask", exact=True).click()
    expect(turns).to_have_count(2)
    expect(turns.nth(1).locator(".answer")).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(turns.locator(".turn-question")).to_have_text(["What is the vault code?", "Repeat it, please."])
    expect(page.locator("#thread-select option:checked")).to_have_text("What is the vault code? (2)")

    with api_client(site, key) as http:
        thread_id = page.locator("#thread-select").input_value()
        thread = http.get(f"/v1/conversations/{thread_id}").json()
        exported = http.get(f"/v1/conversations/{thread_id}/export")
    first, second = thread["items"]
    follow_up = second["trace"][0]
    assert follow_up["stage"] == "follow-up" and "vault code" in follow_up["question"], second["trace"]
    assert second["question"] == "Repeat it, please." and str(code) in second["answer"]
    assert exported.headers["content-type"].startswith("text/markdown")
    markdown = exported.text
    assert "## What is the vault code?" in markdown and "## Repeat it, please." in markdown
    assert re.search(rf"\[\^1\.1\]: “[^”]*vault code is {code}", markdown), markdown

    # The page exports the same text as a download.
    with page.expect_download() as download:
        page.get_by_role("button", name="Export").click()
    assert download.value.suggested_filename == "thread-conversation.md"
    assert open(download.value.path(), encoding="utf-8").read() == markdown

    # A new conversation starts empty, and the next question starts a second thread.
    page.get_by_role("button", name="New", exact=True).click()
    expect(turns).to_have_count(0)
    expect(page.locator("#thread-select option")).to_have_count(2)  # "New conversation" and the thread


def test_the_trace_view_shows_each_strategy_s_path(page: Any, site: str) -> None:
    """Stored traces of every shape render as the reader expects (no model needed: they are data)."""
    page.goto("/")
    shown = page.evaluate(
        """async () => {
            const { renderTrace } = await import('/trace.js');
            const text = async (start, end) => `text ${start}-${end}`;
            const render = (answer) => {
                const details = renderTrace(answer, text);
                document.body.append(details);
                details.open = true;
                return details;
            };
            const tree = render({ strategy: 'tree', trace: [
                { step: 1, node: [2, 0], action: 'open', child: [1, 1], reasoning: 'part 2 mentions the harbour' },
                { step: 2, node: [1, 1], action: 'revert', reasoning: 'no code here' },
                { step: 3, node: [0, 7], segment: 7, action: 'answer', reasoning: 'the passage states it' },
            ] });
            const chain = render({ strategy: 'chain', trace: [
                { step: 1, segments: [0, 9], unit_tokens: 12, notes: 'The code is 4821 [S3].' },
                { step: 2, role: 'manager' },
            ] });
            const attention = render({ strategy: 'attention', trace: [
                { stage: 'attention summary', evidence: [{ start: 10, end: 40, score: 0.61234 }, { start: 90, end: 120, score: 0.2 }] },
            ] });
            const auto = render({ strategy: 'bm25', trace: [], plan: {
                strategy: 'bm25', reason: 'a look-up question in a long text',
                options: [{ strategy: 'bm25', calls: 1, seconds: 2.5 }, { strategy: 'tree', calls: 130, seconds: 60 }],
            } });
            await new Promise((r) => setTimeout(r, 50));
            return [tree, chain, attention, auto].map((d) => d.innerText);
        }"""
    )
    tree, chain, attention, auto = shown
    assert "Opened level 1 part 2" in tree and "part 2 mentions the harbour" in tree
    assert "Went back from level 1 part 2" in tree and "no code here" in tree
    assert "Answered from passage S7" in tree
    assert "Worker 1 read passages S0–S9" in chain and "The code is 4821 [S3]." in chain
    assert "manager wrote the answer" in chain
    assert "0.612" in attention and "10–40" in attention and "text 10-40" in attention
    assert "a look-up question in a long text" in auto and "tree" in auto and "130" in auto


def test_the_answer_streams_into_the_page_before_the_job_ends(
    page: Any, site: str, new_key: Callable[[str], str]
) -> None:
    expect = _expect()
    key = new_key("impatient")
    first, second = random.randint(10_000, 49_999), random.randint(50_000, 99_999)
    with api_client(site, key) as http:
        doc_id = _document(http, _two_codes(first, second), "streamed.txt")
        job = _ask(http, doc_id, "Which vault codes are there?", strategy="full", model=STREAM_MODEL)
    _sign_in(page, key)
    _open(page, "streamed.txt")
    pending = page.locator(f'#thread .turn.pending[data-job-id="{job["id"]}"]')
    preview = pending.locator(".turn-stream")
    expect(preview).to_contain_text("The document gives", timeout=JOB_TIMEOUT_MS)
    assert pending.locator(".job").get_attribute("data-status") == "running"  # seen before the end
    assert str(second) not in preview.inner_text()  # still being written
    answer = page.locator("#thread .turn .answer")
    expect(answer.locator(".answer-text li strong")).to_have_text([str(first), str(second)], timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#thread .turn-stream")).to_have_count(0)  # the stored answer replaced the preview


def test_the_tree_walk_s_answer_streams_into_the_page_before_the_job_ends(
    page: Any, site: str, new_key: Callable[[str], str]
) -> None:
    """A MemWalker answer: the leaf's reply streams a word every 0.4 s; the page shows its answer, without
    the leaf's reasoning or action, while the job runs, then the stored answer with its citation."""
    expect = _expect()
    key = new_key("walker")
    code = random.randint(10_000, 99_999)
    with api_client(site, key) as http:
        doc_id = _document(http, needle_document(code, paragraphs=16), "walked.txt")
        job = _ask(http, doc_id, "What is the vault code?", strategy="tree", model=STREAM_MODEL)
    _sign_in(page, key)
    _open(page, "walked.txt")
    pending = page.locator(f'#thread .turn.pending[data-job-id="{job["id"]}"]')
    preview = pending.locator(".turn-stream")
    expect(preview).to_contain_text("The vault", timeout=JOB_TIMEOUT_MS)
    assert pending.locator(".job").get_attribute("data-status") == "running"  # seen before the end
    shown = preview.inner_text()
    assert shown.startswith("The vault") and "Action" not in shown and "passage states" not in shown
    answer = page.locator("#thread .turn .answer")
    expect(answer.locator(".answer-text")).to_contain_text(f"The vault code is {code}", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#thread .turn-stream")).to_have_count(0)  # the stored answer replaced the preview
    with api_client(site, key) as http:
        finished = wait_job(http, job["id"])
        stored = http.get(f"/v1/answers/{finished['result_id']}").json()
    assert stored["strategy"] == "tree" and stored["citations"] and stored["answer"].startswith(shown.strip())


def test_a_pdf_citation_shows_its_page(page: Any, site: str, new_key: Callable[[str], str]) -> None:
    expect = _expect()
    key = new_key("pages")
    code = random.randint(10_000, 99_999)
    paragraphs = document_with_facts(7, {}, seed=5).split("\n\n")
    pages = [paragraphs[0:3], paragraphs[3:5], [paragraphs[5], f"The vault code is {code}.", paragraphs[6]]]
    with api_client(site, key) as http:
        body = http.post("/v1/documents", files={"file": ("log.pdf", pdf_with_pages(pages), "application/pdf")})
        assert body.status_code == 202, body.text
        assert wait_job(http, body.json()["job_id"])["status"] == "succeeded"
        doc_id = body.json()["document_id"]
        job = wait_job(http, _ask(http, doc_id, "What is the vault code?", strategy="full", model=CITE_ALL_MODEL)["id"])
        answer = http.get(f"/v1/answers/{job['result_id']}").json()
    assert [c["page"] for c in answer["citations"] if str(code) in c["quote"]] == [3], answer["citations"]

    _sign_in(page, key)
    _open(page, "log.pdf")
    shown = page.locator("#thread .turn .answer")
    expect(shown.locator(".citation-where")).to_have_text([re.compile(r"^page 3 · passage S\d+")])
    shown.locator(".cite-ref").first.click()
    expect(page.locator("#reader mark.current")).to_contain_text(str(code))
    expect(page.locator("#reader-meta")).to_contain_text("citation [1]: page 3, passage")
