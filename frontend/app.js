// Longread web page: upload, documents, live job progress, questions with cited evidence, summaries.
// Plain ES module, no build step and no third-party code (the page must work offline).
// Everything the API returns is inserted as text (textContent), never as HTML.

const KEY_STORAGE = "longread.apiKey";
const PAGE_SIZE = 10;
const POLL_MS = 1000;
const EVIDENCE_CONTEXT = 600; // characters shown around a cited passage
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const STATUS_LABELS = {
  queued: "Queued",
  running: "Running",
  succeeded: "Done",
  failed: "Failed",
  canceled: "Canceled",
  interrupted: "Interrupted, resuming",
};
const CITATION_BRACKET = /\[((?:\s*S\d+\s*[,;]?)+)\]/g;

const $ = (selector, root = document) => root.querySelector(selector);

const state = {
  offset: 0,
  total: 0,
  doc: null, // the open document (DocumentDetail)
  watchers: new Set(), // job watchers of the open document, stopped when it closes
  citations: new Map(), // citation number -> citation, for the answer shown in each panel
};

// ---------------------------------------------------------------- API access

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function apiKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** The `{"error": {"code", "message"}}` body of a failed response, or a fallback from the status. */
function errorFrom(status, statusText, bodyText) {
  let body = null;
  try {
    body = bodyText ? JSON.parse(bodyText) : null;
  } catch {
    body = null;
  }
  const error = body && typeof body === "object" ? body.error : null;
  if (error && error.message) return new ApiError(status, error.code || `http_${status}`, error.message);
  const text = (bodyText || "").trim();
  const message = text && text.length < 300 && !text.startsWith("<") ? text : `${status} ${statusText || "error"}`;
  return new ApiError(status, `http_${status}`, message);
}

async function api(path, { method = "GET", json } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  const init = { method, headers };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", `Could not reach the service (${err.message}).`);
  }
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, response.statusText, text);
  return text ? JSON.parse(text) : null;
}

/** A readable sentence for an error, with a hint when the fix is on this page. */
function describe(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (err.code === "missing_api_key") return `${err.message}. This service needs an API key: enter it at the top.`;
  if (err.code === "invalid_api_key") return `${err.message}. Check the API key at the top.`;
  return err.message;
}

function showError(element, err) {
  element.textContent = "";
  if (!err) return;
  const message = document.createElement("p");
  message.className = "error-message";
  message.textContent = describe(err);
  element.append(message);
  if (err instanceof ApiError && err.status) {
    const code = document.createElement("p");
    code.className = "error-code";
    code.textContent = `${err.code} (HTTP ${err.status})`;
    element.append(code);
  }
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- formatting

function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "";
  let s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  s %= 60;
  if (minutes < 60) return s ? `${minutes} min ${s} s` : `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

const number = (n) => Number(n || 0).toLocaleString("en");
const money = (usd) => `$${Number(usd || 0).toFixed(usd && usd < 0.01 ? 4 : 2)}`;

/** The planner's estimate for the chosen strategy beside what the reading took, and why it stopped early. */
function planLine(answer) {
  const parts = [];
  const chosen = answer.plan && (answer.plan.options || []).find((o) => o.strategy === answer.plan.strategy);
  if (chosen) {
    const estimate = `${chosen.calls} calls, ${number(chosen.prompt_tokens + chosen.completion_tokens)} tokens, ~${Math.round(chosen.seconds)} s`;
    const actual = `${answer.llm_calls} calls, ${number(answer.prompt_tokens + answer.completion_tokens)} tokens, ${answer.latency_s.toFixed(0)} s`;
    parts.push(`Estimated ${estimate}; took ${actual}.`);
  }
  if (answer.stopped_reason) parts.push(`Stopped early (${answer.stopped_reason}): a partial answer.`);
  return parts.join(" ");
}

function usageLine(item) {
  const parts = [];
  const cached = item.cached_calls ? ` (${number(item.cached_calls)} cached)` : "";
  parts.push(`${number(item.llm_calls)} LLM call${item.llm_calls === 1 ? "" : "s"}${cached}`);
  if (item.prompt_tokens || item.completion_tokens) {
    parts.push(`${number(item.prompt_tokens)} + ${number(item.completion_tokens)} tokens`);
  }
  parts.push(money(item.cost_usd));
  return parts;
}

function formatDate(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

function truncate(text, limit) {
  return text.length > limit ? `${text.slice(0, limit - 1)}…` : text;
}

// ---------------------------------------------------------------- API key and health

function initKeyForm() {
  const input = $("#api-key");
  const status = $("#key-status");
  const show = () => {
    status.textContent = apiKey() ? "Key saved in this browser." : "No key saved.";
  };
  input.value = apiKey();
  show();
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    try {
      if (value) localStorage.setItem(KEY_STORAGE, value);
      else localStorage.removeItem(KEY_STORAGE);
    } catch {
      status.textContent = "This browser does not allow storing the key.";
      return;
    }
    show();
    closeDocument();
    loadDocuments(0);
  });
  $("#key-clear").addEventListener("click", () => {
    try {
      localStorage.removeItem(KEY_STORAGE);
    } catch {
      /* nothing stored */
    }
    input.value = "";
    show();
    closeDocument();
    loadDocuments(0);
  });
}

async function checkHealth() {
  const element = $("#health");
  try {
    await api("/healthz");
    element.textContent = "service ready";
    element.dataset.state = "ok";
  } catch (err) {
    element.textContent = `service unavailable: ${describe(err)}`;
    element.dataset.state = "down";
  }
}

// ---------------------------------------------------------------- job progress

/** A job's live status: stage, done/total bar, ETA, calls and cost; with a cancel button. */
class JobView {
  constructor(container, title) {
    this.container = container;
    container.textContent = "";
    const root = document.createElement("div");
    root.className = "job";
    root.setAttribute("role", "group");
    root.setAttribute("aria-label", title);
    root.innerHTML = `
      <div class="job-head">
        <span class="job-title"></span>
        <span class="job-status badge"></span>
        <button type="button" class="job-cancel secondary small" hidden>Cancel</button>
      </div>
      <progress class="job-bar bar" max="1"></progress>
      <p class="job-line" role="status" aria-live="polite"></p>
      <p class="job-stats muted"></p>
      <div class="job-error error" role="alert"></div>`;
    $(".job-title", root).textContent = title;
    $(".job-bar", root).setAttribute("aria-label", `${title} progress`);
    container.append(root);
    this.root = root;
    this.job = null;
    $(".job-cancel", root).addEventListener("click", () => this.cancel());
  }

  render(job) {
    this.job = job;
    const root = this.root;
    root.dataset.status = job.status;
    root.dataset.jobId = job.id;
    $(".job-status", root).textContent = STATUS_LABELS[job.status] || job.status;
    const bar = $(".job-bar", root);
    if (job.status === "succeeded") {
      bar.max = 1;
      bar.value = 1;
    } else if (job.total > 0) {
      bar.max = job.total;
      bar.value = Math.min(job.done, job.total);
    } else {
      bar.removeAttribute("value"); // indeterminate until the job knows its size
    }
    const line = [];
    if (job.stage) line.push(job.stage);
    if (job.total > 0) line.push(`${number(job.done)} / ${number(job.total)}`);
    $(".job-line", root).textContent = line.join(" · ") || STATUS_LABELS[job.status] || job.status;
    const stats = [];
    if (!TERMINAL.has(job.status) && job.eta_s != null) stats.push(`about ${formatDuration(job.eta_s)} left`);
    if (TERMINAL.has(job.status) && job.started_at && job.finished_at) {
      stats.push(`took ${formatDuration((new Date(job.finished_at) - new Date(job.started_at)) / 1000)}`);
    }
    stats.push(...usageLine(job));
    if (job.attempts > 1) stats.push(`attempt ${job.attempts}`);
    $(".job-stats", root).textContent = stats.join(" · ");
    $(".job-cancel", root).hidden = TERMINAL.has(job.status);
    const error = $(".job-error", root);
    if (job.status === "failed") showError(error, new ApiError(0, "job_failed", job.error || "the job failed"));
    else if (!error.dataset.transient) error.textContent = "";
  }

  transientError(err) {
    const error = $(".job-error", this.root);
    error.dataset.transient = "1";
    showError(error, err);
  }

  clearTransientError() {
    const error = $(".job-error", this.root);
    if (error.dataset.transient) {
      delete error.dataset.transient;
      error.textContent = "";
    }
  }

  async cancel() {
    if (!this.job) return;
    const button = $(".job-cancel", this.root);
    button.disabled = true;
    try {
      this.render(await api(`/v1/jobs/${enc(this.job.id)}/cancel`, { method: "POST" }));
    } catch (err) {
      this.transientError(err);
    } finally {
      button.disabled = false;
    }
  }
}

/**
 * Follow a job until it ends: Server-Sent Events first, polling `GET /v1/jobs/{id}` if the stream
 * fails (a proxy that buffers, an old browser). Resolves with the final job; `stop()` abandons it.
 */
function watchJob(jobId, view) {
  let stopped = false;
  let source = null;
  let timer = null;
  const watcher = {
    stop() {
      stopped = true;
      if (source) source.close();
      clearTimeout(timer);
      state.watchers.delete(watcher);
    },
  };
  watcher.done = new Promise((resolve) => {
    const finish = (job) => {
      if (stopped) return;
      watcher.stop();
      resolve(job);
    };
    const poll = async () => {
      if (stopped) return;
      try {
        const job = await api(`/v1/jobs/${enc(jobId)}`);
        if (stopped) return;
        view.clearTransientError();
        view.render(job);
        if (TERMINAL.has(job.status)) return finish(job);
      } catch (err) {
        if (stopped) return;
        view.transientError(err);
        if (err.status === 401 || err.status === 404) return finish(null);
      }
      timer = setTimeout(poll, POLL_MS);
    };
    if (!("EventSource" in window)) {
      view.root.dataset.transport = "polling";
      return poll();
    }
    const key = apiKey();
    const url = `/v1/jobs/${enc(jobId)}/events${key ? `?access_token=${enc(key)}` : ""}`;
    source = new EventSource(url);
    view.root.dataset.transport = "events";
    const onEvent = (event) => {
      let job;
      try {
        job = JSON.parse(event.data);
      } catch {
        return;
      }
      view.render(job);
      if (event.type === "end" || TERMINAL.has(job.status)) finish(job);
    };
    source.addEventListener("progress", onEvent);
    source.addEventListener("end", onEvent);
    source.onerror = () => {
      if (stopped) return;
      source.close();
      source = null;
      view.root.dataset.transport = "polling";
      poll();
    };
  });
  state.watchers.add(watcher);
  return watcher;
}

// ---------------------------------------------------------------- uploads

function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/v1/documents");
    request.setRequestHeader("Accept", "application/json");
    const key = apiKey();
    if (key) request.setRequestHeader("Authorization", `Bearer ${key}`);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) {
        try {
          resolve(JSON.parse(request.responseText));
        } catch {
          reject(new ApiError(request.status, "bad_response", "The service sent an unreadable reply."));
        }
      } else {
        reject(errorFrom(request.status, request.statusText, request.responseText));
      }
    });
    request.addEventListener("error", () => reject(new ApiError(0, "network", "The upload could not reach the service.")));
    request.addEventListener("abort", () => reject(new ApiError(0, "aborted", "The upload was interrupted.")));
    const form = new FormData();
    form.append("file", file, file.name);
    request.send(form);
  });
}

async function uploadFiles(files) {
  const bar = $("#upload-progress");
  const status = $("#upload-status");
  const errors = $("#upload-error");
  errors.textContent = "";
  let opened = null;
  const failures = [];
  for (const file of files) {
    status.textContent = `Uploading ${file.name}…`;
    bar.hidden = false;
    bar.value = 0;
    try {
      const result = await uploadFile(file, (fraction) => {
        bar.value = Math.round(fraction * 100);
      });
      status.textContent = result.deduplicated
        ? `${file.name} was uploaded before: opened the existing document.`
        : `${file.name} uploaded: reading it in.`;
      opened = result.document_id;
    } catch (err) {
      failures.push([file.name, err]);
      status.textContent = `${file.name} was not uploaded.`;
    }
  }
  bar.hidden = true;
  for (const [name, err] of failures) {
    const block = document.createElement("div");
    block.className = "upload-failure";
    const title = document.createElement("p");
    title.className = "error-title";
    title.textContent = `Could not upload ${name}:`;
    const detail = document.createElement("div");
    showError(detail, err);
    block.append(title, detail);
    errors.append(block);
  }
  await loadDocuments(0);
  if (opened) await openDocument(opened);
}

function initUpload() {
  const zone = $("#drop-zone");
  const input = $("#file-input");
  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    if (files.length) uploadFiles(files);
  });
  // Files dropped outside the zone must not navigate the page away.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (event) => event.preventDefault());
  let depth = 0;
  zone.addEventListener("dragenter", (event) => {
    event.preventDefault();
    depth += 1;
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    const files = [...(event.dataTransfer ? event.dataTransfer.files : [])];
    if (files.length) uploadFiles(files);
  });
}

// ---------------------------------------------------------------- document list

async function loadDocuments(offset = state.offset) {
  const list = $("#documents-list");
  const errors = $("#documents-error");
  let page;
  try {
    page = await api(`/v1/documents?limit=${PAGE_SIZE}&offset=${Math.max(0, offset)}`);
  } catch (err) {
    showError(errors, err);
    list.textContent = "";
    $("#documents-count").textContent = "";
    $("#documents-empty").hidden = true;
    $("#page-prev").disabled = true;
    $("#page-next").disabled = true;
    return;
  }
  if (!page.items.length && page.total > 0 && offset > 0) {
    return loadDocuments(Math.max(0, offset - PAGE_SIZE)); // the last page emptied: step back
  }
  errors.textContent = "";
  state.offset = page.offset;
  state.total = page.total;
  list.textContent = "";
  for (const doc of page.items) list.append(documentItem(doc));
  $("#documents-empty").hidden = page.total > 0;
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  $("#documents-count").textContent = page.total ? `${first}–${last} of ${page.total}` : "";
  $("#page-prev").disabled = page.offset <= 0;
  $("#page-next").disabled = last >= page.total;
}

function documentItem(doc) {
  const item = document.createElement("li");
  item.className = "document-item";
  item.dataset.documentId = doc.id;
  if (state.doc && state.doc.id === doc.id) item.setAttribute("aria-current", "true");
  const open = document.createElement("button");
  open.type = "button";
  open.className = "document-open link";
  open.textContent = doc.filename;
  open.title = `Open ${doc.filename}`;
  open.addEventListener("click", () => openDocument(doc.id));
  const meta = document.createElement("span");
  meta.className = "muted document-meta";
  meta.textContent = `${number(doc.n_tokens)} tokens · ${formatDate(doc.created_at)}`;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "document-delete danger small";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete ${doc.filename}`);
  remove.addEventListener("click", () => deleteDocument(doc));
  item.append(open, meta, remove);
  return item;
}

async function deleteDocument(doc) {
  if (!window.confirm(`Delete “${doc.filename}” with its answers and summaries?`)) return;
  try {
    await api(`/v1/documents/${enc(doc.id)}`, { method: "DELETE" });
  } catch (err) {
    showError($("#documents-error"), err);
    return;
  }
  if (state.doc && state.doc.id === doc.id) closeDocument();
  $("#upload-status").textContent = `${doc.filename} deleted.`;
  await loadDocuments();
}

function markCurrent() {
  for (const item of document.querySelectorAll(".document-item")) {
    if (state.doc && item.dataset.documentId === state.doc.id) item.setAttribute("aria-current", "true");
    else item.removeAttribute("aria-current");
  }
}

// ---------------------------------------------------------------- one document

function stopWatchers() {
  for (const watcher of [...state.watchers]) watcher.stop();
}

function resetPanels() {
  for (const id of ["#ingest-job", "#ask-job", "#summary-job", "#ask-error", "#summary-error"]) $(id).textContent = "";
  $("#answer").hidden = true;
  $("#summary").hidden = true;
  $("#ask-button").disabled = false;
  $("#summarize").disabled = false;
}

function closeDocument() {
  stopWatchers();
  state.doc = null;
  resetPanels();
  $("#document").hidden = true;
  $("#welcome").hidden = false;
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  markCurrent();
}

async function openDocument(id) {
  let doc;
  try {
    doc = await api(`/v1/documents/${enc(id)}`);
  } catch (err) {
    showError($("#documents-error"), err);
    return;
  }
  stopWatchers();
  resetPanels();
  state.doc = doc;
  $("#welcome").hidden = true;
  $("#document").hidden = false;
  $("#document-title").textContent = doc.filename;
  $("#document-meta").textContent =
    `${number(doc.n_tokens)} tokens · ${number(doc.n_chars)} characters · added ${formatDate(doc.created_at)}`;
  history.replaceState(null, "", `#doc=${enc(doc.id)}`);
  markCurrent();
  if (doc.ingest_job_id) {
    const view = new JobView($("#ingest-job"), "Reading in");
    try {
      const job = await api(`/v1/jobs/${enc(doc.ingest_job_id)}`);
      if (state.doc !== doc) return;
      view.render(job);
      if (!TERMINAL.has(job.status)) watchJob(job.id, view);
    } catch (err) {
      view.transientError(err);
    }
  }
  loadHistory(doc);
}

// ---------------------------------------------------------------- answers and citations

/** The answer text with each [S3] label turned into numbered citation buttons ([1], [2]…). */
function answerFragment(text, citations, panel) {
  const byLabel = new Map();
  for (const c of citations) {
    if (!byLabel.has(c.label)) byLabel.set(c.label, []);
    byLabel.get(c.label).push(c);
  }
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(CITATION_BRACKET)) {
    fragment.append(text.slice(last, match.index));
    last = match.index + match[0].length;
    const labels = match[1].match(/S\d+/g) || [];
    const cited = labels.flatMap((label) => byLabel.get(label) || []);
    if (!cited.length) {
      fragment.append(match[0]);
      continue;
    }
    const sup = document.createElement("sup");
    sup.className = "refs";
    for (const c of cited) {
      const ref = document.createElement("button");
      ref.type = "button";
      ref.className = "cite-ref";
      ref.dataset.n = c.n;
      ref.textContent = `[${c.n}]`;
      ref.setAttribute("aria-label", `Citation ${c.n}: show the evidence`);
      ref.addEventListener("click", () => openEvidence(c, panel));
      sup.append(ref);
    }
    fragment.append(sup);
  }
  fragment.append(text.slice(last));
  return fragment;
}

function renderAnswer(answer, panel) {
  const text = $(".answer-text", panel);
  text.textContent = "";
  for (const [i, paragraph] of answer.answer.split(/\n{2,}/).entries()) {
    const p = document.createElement("p");
    p.append(answerFragment(paragraph, answer.citations, panel));
    if (i === 0 || paragraph.trim()) text.append(p);
  }
  const echo = $(".question-echo", panel);
  if (echo) echo.textContent = answer.question ? `Q: ${answer.question}` : "";
  const strategy = $(".answer-strategy", panel);
  strategy.textContent = "";
  const label = document.createElement("strong");
  label.textContent = "Strategy: ";
  const name = document.createElement("span");
  name.className = "strategy-name";
  name.textContent = answer.strategy;
  const reason = document.createElement("span");
  reason.className = "strategy-reason";
  reason.textContent = answer.strategy_reason ? ` (${answer.strategy_reason})` : "";
  strategy.append(label, name, reason);
  const plan = planLine(answer);
  if (plan) {
    const line = document.createElement("div");
    line.className = answer.stopped_reason ? "strategy-plan stopped" : "strategy-plan muted";
    line.textContent = plan;
    strategy.append(line);
  }
  const stats = [answer.model, ...usageLine(answer)];
  if (answer.latency_s) stats.push(`${answer.latency_s.toFixed(1)} s`);
  if (answer.dropped_citations) {
    stats.push(`${answer.dropped_citations} unverifiable citation${answer.dropped_citations === 1 ? "" : "s"} removed`);
  }
  $(".answer-stats", panel).textContent = stats.join(" · ");
  const list = $(".citations", panel);
  list.textContent = "";
  for (const c of answer.citations) {
    const item = document.createElement("li");
    item.value = c.n;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "citation";
    button.dataset.n = c.n;
    button.textContent = `“${truncate(c.quote, 280)}”`;
    button.setAttribute("aria-label", `Citation ${c.n}: show “${truncate(c.quote, 80)}” in the document`);
    button.addEventListener("click", () => openEvidence(c, panel));
    const where = document.createElement("span");
    where.className = "muted citation-where";
    where.textContent = `passage ${c.label} · characters ${number(c.start)}–${number(c.end)}`;
    item.append(button, where);
    list.append(item);
  }
  $(".no-citations", panel).hidden = answer.citations.length > 0;
  panel.dataset.answerId = answer.id;
  panel.hidden = false;
}

async function showAnswerOf(job, panel, errorBox) {
  if (!job) return;
  if (job.status !== "succeeded") {
    if (job.status === "canceled") errorBox.textContent = "Canceled.";
    return;
  }
  if (!job.result_id) return;
  try {
    const answer = await api(`/v1/answers/${enc(job.result_id)}`);
    if (!state.doc || answer.document_id !== state.doc.id) return;
    renderAnswer(answer, panel);
    loadHistory(state.doc);
  } catch (err) {
    showError(errorBox, err);
  }
}

function initAsk() {
  $("#ask-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const doc = state.doc;
    if (!doc) return;
    const errorBox = $("#ask-error");
    const question = $("#question").value.trim();
    errorBox.textContent = "";
    if (!question) {
      showError(errorBox, new ApiError(0, "empty_question", "Type a question first."));
      return;
    }
    const button = $("#ask-button");
    button.disabled = true;
    $("#answer").hidden = true;
    try {
      const job = await api(`/v1/documents/${enc(doc.id)}/questions`, {
        method: "POST",
        json: { question, strategy: $("#strategy").value },
      });
      if (state.doc !== doc) return;
      const view = new JobView($("#ask-job"), "Answering");
      view.render(job);
      const final = TERMINAL.has(job.status) ? job : await watchJob(job.id, view).done;
      if (state.doc !== doc) return;
      await showAnswerOf(final, $("#answer"), errorBox);
    } catch (err) {
      showError(errorBox, err);
    } finally {
      if (state.doc === doc) button.disabled = false;
    }
  });
}

function initSummary() {
  $("#summarize").addEventListener("click", async () => {
    const doc = state.doc;
    if (!doc) return;
    const errorBox = $("#summary-error");
    const button = $("#summarize");
    errorBox.textContent = "";
    button.disabled = true;
    $("#summary").hidden = true;
    try {
      const job = await api(`/v1/documents/${enc(doc.id)}/summaries`, {
        method: "POST",
        json: { strategy: $("#summary-strategy").value },
      });
      if (state.doc !== doc) return;
      const view = new JobView($("#summary-job"), "Summarizing");
      view.render(job);
      const final = TERMINAL.has(job.status) ? job : await watchJob(job.id, view).done;
      if (state.doc !== doc) return;
      await showAnswerOf(final, $("#summary"), errorBox);
    } catch (err) {
      showError(errorBox, err);
    } finally {
      if (state.doc === doc) button.disabled = false;
    }
  });
}

async function loadHistory(doc) {
  const list = $("#history-list");
  let answers;
  try {
    answers = await api(`/v1/documents/${enc(doc.id)}/answers?limit=20`);
  } catch {
    return; // the history is a convenience; errors show where the user acted
  }
  if (state.doc !== doc) return;
  list.textContent = "";
  for (const answer of answers) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link";
    const what = answer.kind === "summary" ? "Summary" : truncate(answer.question || "Answer", 90);
    button.textContent = `${what} (${answer.strategy}, ${formatDate(answer.created_at)})`;
    button.addEventListener("click", () => {
      const panel = answer.kind === "summary" ? $("#summary") : $("#answer");
      renderAnswer(answer, panel);
      panel.scrollIntoView({ block: "nearest" });
    });
    item.append(button);
    list.append(item);
  }
  $("#history-empty").hidden = answers.length > 0;
}

// ---------------------------------------------------------------- evidence view

/** Show the document text around a citation: its passage shaded, the quoted span highlighted. */
async function openEvidence(citation, panel) {
  const doc = state.doc;
  if (!doc) return;
  const dialog = $("#evidence");
  const body = $("#evidence-text");
  const warning = $("#evidence-warning");
  body.textContent = "Loading…";
  warning.hidden = true;
  $("#evidence-error").textContent = "";
  $("#evidence-title").textContent = `Evidence [${citation.n}]`;
  $("#evidence-meta").textContent =
    `${doc.filename} · passage ${citation.label} · characters ${number(citation.start)}–${number(citation.end)}`;
  dialog.dataset.citation = citation.n;
  dialog.dataset.panel = panel.id;
  if (!dialog.open) dialog.showModal();

  const segStart = Math.min(citation.segment_start ?? citation.start, citation.start);
  const segEnd = Math.max(citation.segment_end ?? citation.end, citation.end);
  const start = Math.max(0, Math.min(segStart, citation.start - EVIDENCE_CONTEXT));
  const end = Math.min(doc.n_chars, Math.max(segEnd, citation.end + EVIDENCE_CONTEXT));
  let span;
  try {
    span = await api(`/v1/documents/${enc(doc.id)}/text?start=${start}&end=${end}`);
  } catch (err) {
    body.textContent = "";
    showError($("#evidence-error"), err);
    return;
  }
  if (dialog.dataset.citation !== String(citation.n) || dialog.dataset.panel !== panel.id) return;
  const text = span.text;
  const at = (offset) => Math.max(0, Math.min(text.length, offset - span.start));
  const [s0, q0, q1, s1] = [at(segStart), at(citation.start), at(citation.end), at(segEnd)];
  // Context outside the cited passage starts and ends on word boundaries.
  let head = text.slice(0, s0);
  let tail = text.slice(s1);
  if (span.start > 0 && head) head = head.slice(head.search(/\s/) + 1);
  if (span.end < span.n_chars && tail) {
    const cut = tail.search(/\s\S*$/);
    if (cut > 0) tail = tail.slice(0, cut);
  }
  body.textContent = "";
  if (span.start > 0) body.append("… ");
  body.append(head);
  const segment = document.createElement("span");
  segment.className = "segment";
  segment.title = `passage ${citation.label}`;
  const mark = document.createElement("mark");
  mark.id = "evidence-mark";
  mark.textContent = text.slice(q0, q1);
  segment.append(text.slice(s0, q0), mark, text.slice(q1, s1));
  body.append(segment, tail);
  if (span.end < span.n_chars) body.append(" …");
  if (mark.textContent !== citation.quote) {
    warning.textContent = "The stored text at these offsets differs from the quote given with the answer.";
    warning.hidden = false;
  }
  mark.scrollIntoView({ block: "center" });
}

// ---------------------------------------------------------------- strategies

/** Fill a strategy menu from the server's registry, keeping `auto` (the planner) first. */
function fillStrategyMenu(select, strategies, selected) {
  const options = [["auto", "auto: planned for the document, the question and the budget"]];
  for (const s of strategies) options.push([s.name, `${s.name}: ${s.title}`]);
  select.textContent = "";
  for (const [value, label] of options) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    option.selected = value === selected;
    select.append(option);
  }
}

async function loadStrategies() {
  let strategies;
  try {
    strategies = await api("/v1/strategies");
  } catch {
    return; // the menus keep their built-in options
  }
  fillStrategyMenu($("#strategy"), strategies, "auto");
  fillStrategyMenu($("#summary-strategy"), strategies.filter((s) => s.summarises), "tree");
}

// ---------------------------------------------------------------- start

function init() {
  loadStrategies();
  initKeyForm();
  initUpload();
  initAsk();
  initSummary();
  $("#documents-refresh").addEventListener("click", () => loadDocuments());
  $("#page-prev").addEventListener("click", () => loadDocuments(state.offset - PAGE_SIZE));
  $("#page-next").addEventListener("click", () => loadDocuments(state.offset + PAGE_SIZE));
  $("#document-close").addEventListener("click", closeDocument);
  checkHealth();
  loadDocuments(0).then(() => {
    const match = location.hash.match(/^#doc=([^&]+)/);
    if (match) openDocument(decodeURIComponent(match[1]));
  });
}

init();
