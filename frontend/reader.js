// The source viewer: the whole stored text of a document, one page at a time, with every citation of
// the current answer highlighted and controls to step from citation to citation. Pages are fetched
// from GET /v1/documents/{id}/text as they are shown, so a book of millions of characters stays light.

const PAGE_CHARS = 6000;
const $ = (selector, root = document) => root.querySelector(selector);

let deps = null; // { api, showError } from app.js
const view = { doc: null, answer: null, citations: [], index: 0, page: 0, pages: 1, loading: 0 };

const enc = encodeURIComponent;
const number = (n) => Number(n || 0).toLocaleString("en");

function pageOf(offset) {
  return Math.min(view.pages - 1, Math.floor(offset / PAGE_CHARS));
}

/** The page's text with each citation's part on it wrapped in <mark>, the current one marked as such. */
function paint(span) {
  const body = $("#reader-text");
  body.textContent = "";
  const start = span.start;
  const end = span.end;
  const bounds = new Set([start, end]);
  const onPage = view.citations.filter((c) => c.end > start && c.start < end);
  for (const c of onPage) {
    bounds.add(Math.max(start, c.start));
    bounds.add(Math.min(end, c.end));
  }
  const cuts = [...bounds].sort((a, b) => a - b);
  const current = view.citations[view.index];
  let currentMark = null;
  for (let i = 0; i < cuts.length - 1; i += 1) {
    const [a, b] = [cuts[i], cuts[i + 1]];
    const text = span.text.slice(a - start, b - start);
    const covering = onPage.filter((c) => c.start <= a && c.end >= b);
    if (!covering.length) {
      body.append(text);
      continue;
    }
    const mark = document.createElement("mark");
    mark.textContent = text;
    mark.dataset.n = covering.map((c) => c.n).join(",");
    mark.title = `citation ${covering.map((c) => c.n).join(", ")}`;
    if (current && covering.includes(current)) {
      mark.classList.add("current");
      if (!currentMark) {
        mark.id = "reader-current";
        currentMark = mark;
      }
    }
    body.append(mark);
  }
  return currentMark;
}

function controls() {
  const n = view.citations.length;
  const current = view.citations[view.index];
  $("#reader-position").textContent = n ? `Citation ${view.index + 1} of ${n}` : "No citations";
  $("#reader-page").textContent = `Page ${number(view.page + 1)} of ${number(view.pages)}`;
  $("#reader-prev-cite").disabled = view.index <= 0;
  $("#reader-next-cite").disabled = view.index >= n - 1;
  $("#reader-prev-page").disabled = view.page <= 0;
  $("#reader-next-page").disabled = view.page >= view.pages - 1;
  const where = current
    ? ` · citation [${current.n}]: ${current.page != null ? `page ${current.page}, ` : ""}passage ${current.label}, characters ${number(current.start)}–${number(current.end)}`
    : "";
  $("#reader-meta").textContent = `${view.doc.filename}${where}`;
}

async function showPage(page, { focusCitation = false } = {}) {
  view.page = Math.max(0, Math.min(view.pages - 1, page));
  const ticket = ++view.loading;
  controls();
  $("#reader-error").textContent = "";
  const start = view.page * PAGE_CHARS;
  const end = Math.min(view.doc.n_chars, start + PAGE_CHARS);
  let span;
  try {
    span = await deps.api(`/v1/documents/${enc(view.doc.id)}/text?start=${start}&end=${end}`);
  } catch (err) {
    deps.showError($("#reader-error"), err);
    return;
  }
  if (ticket !== view.loading) return; // a later page was asked for meanwhile
  const mark = paint(span);
  const current = view.citations[view.index];
  const warning = $("#reader-warning");
  warning.hidden = true;
  if (current && current.start >= start && current.end <= end) {
    const stored = span.text.slice(current.start - start, current.end - start);
    if (stored !== current.quote) {
      warning.textContent = "The stored text at these offsets differs from the quote given with the answer.";
      warning.hidden = false;
    }
  }
  if (focusCitation && mark) mark.scrollIntoView({ block: "center" });
  else $("#reader-text").scrollTop = 0;
}

function goToCitation(index) {
  view.index = Math.max(0, Math.min(view.citations.length - 1, index));
  const citation = view.citations[view.index];
  return showPage(citation ? pageOf(citation.start) : 0, { focusCitation: true });
}

/** Open the reader on `doc` at citation number `n` of `answer` (every citation of it highlighted). */
export function openReader(doc, answer, n) {
  if (!doc) return;
  view.doc = doc;
  view.answer = answer;
  view.citations = [...answer.citations].sort((a, b) => a.start - b.start || a.n - b.n);
  view.pages = Math.max(1, Math.ceil(doc.n_chars / PAGE_CHARS));
  const dialog = $("#reader");
  dialog.dataset.answerId = answer.id;
  $("#reader-title").textContent = `Source: ${doc.filename}`;
  if (!dialog.open) dialog.showModal();
  const index = view.citations.findIndex((c) => c.n === n);
  return goToCitation(index < 0 ? 0 : index);
}

export function initReader(dependencies) {
  deps = dependencies;
  $("#reader-prev-cite").addEventListener("click", () => goToCitation(view.index - 1));
  $("#reader-next-cite").addEventListener("click", () => goToCitation(view.index + 1));
  $("#reader-prev-page").addEventListener("click", () => showPage(view.page - 1));
  $("#reader-next-page").addEventListener("click", () => showPage(view.page + 1));
  $("#reader").addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "n") goToCitation(view.index + 1);
    else if (event.key === "p") goToCitation(view.index - 1);
  });
}
