// Longread web page: upload, documents, a conversation per document with live job progress, answers
// with cited evidence, the source beside the answer, summaries.
// Plain ES modules, no build step and no third-party code (the page must work offline).
// Everything the API returns is inserted as text (textContent, or DOM built by markdown.js), never as HTML.
//
// The jobs API is the page's source of truth: opening a document (also after a reload) asks for the
// document's active jobs and re-attaches to each one's event stream, so a running question keeps its
// card and shows its answer when it ends.

import { renderMarkdown } from "./markdown.js";
import { openReader, initReader } from "./reader.js";
import { renderTrace } from "./trace.js";

const KEY_STORAGE = "longread.apiKey";
const PAGE_SIZE = 10;
const POLL_MS = 1000;
const MAX_RECONNECTS = 3;
const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
const STATUS_LABELS = {
  queued: "Queued",
  running: "Running",
  succeeded: "Done",
  failed: "Failed",
  canceled: "Canceled",
  interrupted: "Interrupted, resuming",
};
// Stages whose done/total counts steps against a limit, not work done: never shown as progress or an ETA.
const LIMIT_STAGES = new Set(["navigating"]);
const CITATION_BRACKET = /\[((?:\s*S\d+\s*[,;]?)+)\]/g;
const CITATION_NUMBERS = /\[(\d+(?:\s*[,;]\s*\d+)*)\]/g;
const NARROW = "(max-width: 52rem)";

const $ = (selector, root = document) => root.querySelector(selector);

const state = {
  offset: 0,
  total: 0,
  doc: null, // the open document (DocumentDetail)
  conversationId: null, // the open thread of that document; null: the next question starts one
  collectionConversationId: null, // the open thread of the open collection; null: the next question starts one
  watchers: new Set(), // job watchers of the open document or collection, stopped when it closes
  collection: null, // the open collection (CollectionDetail), the scope of its questions
  checked: new Map(), // documents checked in the list (id -> filename): the next collection's members
  threadShows: 0, // counts `showConversation` calls: only the latest one fills the thread view
};

// ---------------------------------------------------------------- API access

export class ApiError extends Error {
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
  // Never show a body that is not the API's error object: it may be a proxy's page or a stack trace.
  return new ApiError(status, `http_${status}`, `the service answered ${status} ${statusText || "error"}`);
}

async function request(path, { method = "GET", json, accept = "application/json" } = {}) {
  const headers = { Accept: accept, ...authHeaders() };
  const init = { method, headers };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "Could not reach the service.");
  }
  const text = await response.text();
  if (!response.ok) throw errorFrom(response.status, response.statusText, text);
  return text;
}

export async function api(path, options = {}) {
  const text = await request(path, options);
  return text ? JSON.parse(text) : null;
}

/** A readable sentence for an error, with a hint when the fix is on this page. */
function describe(err) {
  if (!(err instanceof ApiError)) return "Something went wrong in this page; reload it to try again.";
  if (err.code === "missing_api_key") return `${err.message}. This service needs an API key: enter it at the top.`;
  if (err.code === "invalid_api_key") return `${err.message}. Check the API key at the top.`;
  return err.message;
}

export function showError(element, err) {
  element.textContent = "";
  if (!err) return;
  const message = document.createElement("p");
  message.className = "error-message";
  message.textContent = describe(err);
  element.append(message);
  if (err instanceof ApiError && err.code && err.code !== "network") {
    const code = document.createElement("p");
    code.className = "error-code";
    code.textContent = err.status ? `${err.code} (HTTP ${err.status})` : err.code;
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

function jobSeconds(job) {
  if (!job.started_at || !job.finished_at) return null;
  return (new Date(job.finished_at) - new Date(job.started_at)) / 1000;
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
  const changed = () => {
    show();
    closeDocument();
    closeCollection();
    state.checked.clear();
    showScope();
    loadDocuments(0);
    loadCollections();
  };
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
    changed();
  });
  $("#key-clear").addEventListener("click", () => {
    try {
      localStorage.removeItem(KEY_STORAGE);
    } catch {
      /* nothing stored */
    }
    input.value = "";
    changed();
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
  constructor(container, title, { replace = true } = {}) {
    if (replace) container.textContent = "";
    const root = document.createElement("div");
    root.className = "job";
    root.setAttribute("role", "group");
    root.setAttribute("aria-label", title);
    const head = document.createElement("div");
    head.className = "job-head";
    const name = document.createElement("span");
    name.className = "job-title";
    name.textContent = title;
    const badge = document.createElement("span");
    badge.className = "job-status badge";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "job-cancel secondary small";
    cancel.textContent = "Cancel";
    cancel.hidden = true;
    cancel.setAttribute("aria-label", `Cancel: ${title}`);
    head.append(name, badge, cancel);
    const bar = document.createElement("progress");
    bar.className = "job-bar bar";
    bar.max = 1;
    bar.setAttribute("aria-label", `${title} progress`);
    const line = document.createElement("p");
    line.className = "job-line";
    line.setAttribute("role", "status");
    line.setAttribute("aria-live", "polite");
    const stats = document.createElement("p");
    stats.className = "job-stats muted";
    const note = document.createElement("p");
    note.className = "job-note muted";
    note.hidden = true;
    const error = document.createElement("div");
    error.className = "job-error error";
    error.setAttribute("role", "alert");
    root.append(head, bar, line, stats, note, error);
    container.append(root);
    this.root = root;
    this.job = null;
    cancel.addEventListener("click", () => this.cancel());
  }

  render(job) {
    this.job = job;
    const root = this.root;
    root.dataset.status = job.status;
    root.dataset.jobId = job.id;
    $(".job-status", root).textContent = STATUS_LABELS[job.status] || job.status;
    const bar = $(".job-bar", root);
    const limited = LIMIT_STAGES.has(job.stage);
    if (job.status === "succeeded") {
      bar.max = 1;
      bar.value = 1;
    } else if (TERMINAL.has(job.status)) {
      // A stopped job's bar stands still where it stopped (an indeterminate bar would keep moving).
      bar.max = Math.max(1, job.total);
      bar.value = limited ? 0 : Math.min(job.done, job.total);
    } else if (job.total > 0 && !limited) {
      bar.max = job.total;
      bar.value = Math.min(job.done, job.total);
    } else {
      bar.removeAttribute("value"); // indeterminate: the size is unknown, or the count is a step limit
    }
    const line = [];
    if (job.stage && !(TERMINAL.has(job.status) && job.stage === job.status)) line.push(job.stage);
    if (limited && job.total > 0) line.push(`step ${number(job.done)} (at most ${number(job.total)})`);
    else if (job.total > 0) line.push(`${number(job.done)} / ${number(job.total)}`);
    $(".job-line", root).textContent = line.join(" · ") || STATUS_LABELS[job.status] || job.status;
    const stats = [];
    if (!TERMINAL.has(job.status) && !limited && job.eta_s != null) stats.push(`about ${formatDuration(job.eta_s)} left`);
    const took = jobSeconds(job);
    if (TERMINAL.has(job.status) && took != null) stats.push(`took ${formatDuration(took)}`);
    stats.push(...usageLine(job));
    if (job.attempts > 1) stats.push(`attempt ${job.attempts}`);
    $(".job-stats", root).textContent = `${job.kind === "ask" || job.kind === "summarize" ? "whole job: " : ""}${stats.join(" · ")}`;
    $(".job-cancel", root).hidden = TERMINAL.has(job.status);
    const note = $(".job-note", root);
    note.hidden = job.status !== "canceled";
    note.textContent = job.status === "canceled" ? "Canceled: nothing more will be read for this job." : "";
    const error = $(".job-error", root);
    if (job.status === "failed") {
      showError(error, new ApiError(0, job.error_code || "job_failed", job.error || "the job failed"));
    } else if (!error.dataset.transient) error.textContent = "";
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
 * Follow a job until it ends: Server-Sent Events (opened with a short-lived signed token, never the
 * API key) first, polling `GET /v1/jobs/{id}` if the stream fails. Resolves with the final job.
 */
function watchJob(jobId, view) {
  let stopped = false;
  let source = null;
  let timer = null;
  let reconnects = 0;
  const watcher = {
    jobId,
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
      view.root.dataset.transport = "polling";
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
    const stream = async () => {
      let issued;
      try {
        issued = await api(`/v1/jobs/${enc(jobId)}/stream-token`, { method: "POST" });
      } catch {
        return poll();
      }
      if (stopped) return;
      source = new EventSource(issued.events_url);
      view.root.dataset.transport = "events";
      const onEvent = (event) => {
        let job;
        try {
          job = JSON.parse(event.data);
        } catch {
          return;
        }
        view.clearTransientError();
        view.render(job);
        if (event.type === "end" || TERMINAL.has(job.status)) finish(job);
      };
      source.addEventListener("progress", onEvent);
      source.addEventListener("end", onEvent);
      source.addEventListener("answer", (event) => {
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          return;
        }
        // A restart replaces the text so far (a new attempt, or a reader that started its answer over).
        if ((data.text || data.restart) && view.onAnswerText) view.onAnswerText(data.text || "", Boolean(data.restart));
      });
      source.onerror = () => {
        if (stopped) return;
        source.close();
        source = null;
        // A dropped stream (a restart, a proxy timeout, a token past its few minutes) reopens with a
        // fresh token; a stream that keeps failing gives way to polling.
        reconnects += 1;
        if (reconnects <= MAX_RECONNECTS) timer = setTimeout(stream, 500 * reconnects);
        else poll();
      };
    };
    if (!("EventSource" in window)) return poll();
    stream();
  });
  state.watchers.add(watcher);
  return watcher;
}

// ---------------------------------------------------------------- uploads

function uploadFile(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/documents");
    xhr.setRequestHeader("Accept", "application/json");
    const key = apiKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError(xhr.status, "bad_response", "The service sent an unreadable reply."));
        }
      } else {
        reject(errorFrom(xhr.status, xhr.statusText, xhr.responseText));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "The upload could not reach the service.")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "The upload was interrupted.")));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}

/** One line per file of a multi-file upload, each with its own status. */
function uploadRow(file) {
  const item = document.createElement("li");
  item.className = "upload-row";
  item.dataset.state = "waiting";
  const name = document.createElement("span");
  name.className = "upload-name";
  name.textContent = file.name;
  const status = document.createElement("span");
  status.className = "upload-state muted";
  status.textContent = "waiting";
  item.append(name, status);
  $("#upload-list").append(item);
  return (stateName, text) => {
    item.dataset.state = stateName;
    status.textContent = text;
  };
}

async function uploadFiles(files) {
  const bar = $("#upload-progress");
  const status = $("#upload-status");
  const errors = $("#upload-error");
  errors.textContent = "";
  $("#upload-list").textContent = "";
  const rows = files.map((file) => uploadRow(file));
  let opened = null;
  const failures = [];
  for (const [i, file] of files.entries()) {
    status.textContent = `Uploading ${file.name}…`;
    rows[i]("uploading", "uploading…");
    bar.hidden = false;
    bar.value = 0;
    try {
      const result = await uploadFile(file, (fraction) => {
        bar.value = Math.round(fraction * 100);
      });
      status.textContent = result.deduplicated
        ? `${file.name} was uploaded before: opened the existing document.`
        : `${file.name} uploaded: reading it in.`;
      rows[i]("done", result.deduplicated ? "uploaded before" : "uploaded");
      opened = result.document_id;
    } catch (err) {
      failures.push([file.name, err]);
      rows[i]("failed", "not uploaded");
      status.textContent = `${file.name} was not uploaded.`;
    }
  }
  bar.hidden = true;
  if (files.length > 1) {
    const ok = files.length - failures.length;
    status.textContent = `${ok} of ${files.length} files uploaded.`;
  }
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
  open.addEventListener("click", () => openDocument(doc.id, { scroll: true }));
  const meta = document.createElement("span");
  meta.className = "muted document-meta";
  meta.textContent = `${number(doc.n_tokens)} tokens · ${formatDate(doc.created_at)}`;
  const pick = document.createElement("input");
  pick.type = "checkbox";
  pick.className = "document-check";
  pick.checked = state.checked.has(doc.id);
  pick.setAttribute("aria-label", `Include ${doc.filename} in a question across documents`);
  pick.addEventListener("change", () => {
    if (pick.checked) state.checked.set(doc.id, doc.filename);
    else state.checked.delete(doc.id);
    showScope();
  });
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "document-delete danger small";
  remove.textContent = "Delete";
  remove.setAttribute("aria-label", `Delete ${doc.filename}`);
  remove.addEventListener("click", () => deleteDocument(doc));
  item.append(pick, open, meta, remove);
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
  state.checked.delete(doc.id);
  showScope();
  $("#upload-status").textContent = `${doc.filename} deleted.`;
  await loadDocuments();
  loadCollections(); // the collections that held it count one document fewer
  const open = state.collection;
  if (open) {
    api(`/v1/collections/${enc(open.id)}`)
      .then((detail) => {
        if (state.collection !== open) return;
        Object.assign(open, detail);
        collectionDocuments(open);
      })
      .catch(() => {});
  }
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
  for (const id of ["#ingest-job", "#summary-job", "#ask-error", "#summary-error", "#thread", "#thread-status"]) {
    $(id).textContent = "";
  }
  $("#summary").hidden = true;
  $("#ask-button").disabled = false;
  $("#summarize").disabled = false;
}

function updateHash() {
  if (state.collection) {
    history.replaceState(null, "", `#collection=${enc(state.collection.id)}`);
    return;
  }
  if (!state.doc) {
    if (location.hash) history.replaceState(null, "", location.pathname + location.search);
    return;
  }
  const conversation = state.conversationId ? `&c=${enc(state.conversationId)}` : "";
  history.replaceState(null, "", `#doc=${enc(state.doc.id)}${conversation}`);
}

function closeDocument() {
  stopWatchers();
  state.doc = null;
  state.conversationId = null;
  resetPanels();
  $("#question").value = "";
  $("#document").hidden = true;
  $("#welcome").hidden = false;
  updateHash();
  markCurrent();
}

async function openDocument(id, { conversationId = null, scroll = false } = {}) {
  let doc;
  try {
    doc = await api(`/v1/documents/${enc(id)}`);
  } catch (err) {
    showError($("#documents-error"), err);
    return;
  }
  closeCollection({ quiet: true });
  stopWatchers();
  resetPanels();
  if (!state.doc || state.doc.id !== doc.id) $("#question").value = ""; // a question belongs to its document
  state.doc = doc;
  state.conversationId = null;
  $("#welcome").hidden = true;
  const section = $("#document");
  section.hidden = false;
  $("#document-title").textContent = doc.filename;
  $("#document-meta").textContent =
    `${number(doc.n_tokens)} tokens · ${number(doc.n_chars)} characters · added ${formatDate(doc.created_at)}`;
  markCurrent();
  if (scroll && window.matchMedia(NARROW).matches) section.scrollIntoView({ block: "start" });

  let active = [];
  try {
    active = await api(`/v1/documents/${enc(doc.id)}/jobs?status=active`);
  } catch (err) {
    showError($("#ask-error"), err);
  }
  if (state.doc !== doc) return;
  const ingest = active.find((job) => job.kind === "ingest");
  if (ingest) attachIngest(doc, ingest);
  else if (doc.ingest_job_id) {
    api(`/v1/jobs/${enc(doc.ingest_job_id)}`)
      .then((job) => state.doc === doc && attachIngest(doc, job))
      .catch(() => {});
  }
  // A running question decides which thread opens (it is what the user was waiting for).
  const asks = active.filter((job) => job.kind === "ask");
  const running = asks.length ? asks[asks.length - 1].params.conversation_id : null;
  await loadConversations(doc, running || conversationId || "latest");
  if (state.doc !== doc) return;
  const summary = active.filter((job) => job.kind === "summarize").pop();
  if (summary) attachSummary(doc, summary);
  loadHistory(doc);
}

function attachIngest(doc, job) {
  const view = new JobView($("#ingest-job"), "Reading in");
  view.render(job);
  if (!TERMINAL.has(job.status)) watchJob(job.id, view);
}

// ---------------------------------------------------------------- conversations

async function loadConversations(doc, choose) {
  let threads = [];
  try {
    threads = await api(`/v1/documents/${enc(doc.id)}/conversations`);
  } catch (err) {
    showError($("#ask-error"), err);
  }
  if (state.doc !== doc) return;
  await showConversation(doc, fillThreadMenu($("#thread-select"), threads, choose));
}

/**
 * A thread menu: "New conversation", then each thread with its count of answered turns. Returns the
 * thread to open: `choose` when it is listed, the newest for "latest" (or an unlisted one), else none.
 */
function fillThreadMenu(select, threads, choose) {
  select.textContent = "";
  const fresh = document.createElement("option");
  fresh.value = "";
  fresh.textContent = "New conversation";
  select.append(fresh);
  for (const thread of threads) {
    const option = document.createElement("option");
    option.value = thread.id;
    option.dataset.title = truncate(thread.title || "Conversation", 60);
    option.textContent = `${option.dataset.title} (${thread.turns})`;
    select.append(option);
  }
  let id = choose === "latest" ? (threads[0] ? threads[0].id : null) : choose;
  if (id && !threads.some((t) => t.id === id)) id = threads[0] ? threads[0].id : null;
  return id;
}

/** The open thread's menu entry counts the answered turns its view shows. */
function countMenuTurns(select, id, view) {
  const option = [...select.options].find((o) => o.value && o.value === id);
  if (!option) return;
  const answered = view.querySelectorAll(".turn:not(.pending):not(.unanswered)").length;
  option.textContent = `${option.dataset.title} (${answered})`;
}

function countTurns() {
  countMenuTurns($("#thread-select"), state.conversationId, $("#thread"));
}

/** Put a turn into the thread in time order (answers by when they ended, open questions by when asked). */
function placeTurn(item, time, thread = $("#thread"), empty = $("#thread-empty")) {
  item.dataset.time = time || new Date().toISOString();
  const later = [...thread.children].find((other) => other !== item && other.dataset.time > item.dataset.time);
  thread.insertBefore(item, later || null);
  empty.hidden = true;
}

/**
 * Show a thread: its answers, and a card for each of its questions that is still being answered (live)
 * or that ended without an answer (failed or canceled, so the question is not silently lost).
 */
async function showConversation(doc, id) {
  // Two calls for the same thread can overlap (a new answer and a menu change); each clears the view
  // first, so an earlier one that went on after its reads would add the same turns a second time.
  const show = ++state.threadShows;
  const current = () => state.doc === doc && state.conversationId === id && state.threadShows === show;
  state.conversationId = id;
  $("#thread-select").value = id || "";
  $("#thread").textContent = "";
  $("#thread-export").disabled = !id;
  $("#thread-copy").disabled = !id;
  $("#thread-empty").hidden = Boolean(id);
  updateHash();
  if (!id) return;
  let thread;
  try {
    thread = await api(`/v1/conversations/${enc(id)}`);
  } catch (err) {
    showError($("#ask-error"), err);
    return;
  }
  if (!current()) return;
  for (const answer of thread.items) placeTurn(answerTurn(answer), answer.created_at);
  let jobs = [];
  try {
    jobs = await api(`/v1/documents/${enc(doc.id)}/jobs?status=active,failed,canceled&limit=100`);
  } catch (err) {
    showError($("#ask-error"), err);
  }
  if (!current()) return;
  for (const job of jobs) if (job.kind === "ask" && job.params.conversation_id === id) attachQuestion(doc, job);
}

/** A question's turn while it is answered: the question, its job card and the answer as it streams in. */
function pendingTurn(job, thread, empty, title) {
  const existing = $(`[data-job-id="${CSS.escape(job.id)}"]`, thread);
  if (existing) existing.remove();
  for (const watcher of [...state.watchers]) if (watcher.jobId === job.id) watcher.stop();
  const item = document.createElement("li");
  item.className = "turn pending";
  item.dataset.jobId = job.id;
  const question = document.createElement("p");
  question.className = "turn-question";
  question.textContent = job.params.question || "";
  const card = document.createElement("div");
  card.className = "turn-job";
  item.append(question, card);
  placeTurn(item, job.created_at, thread, empty);
  const view = new JobView(card, title);
  // The answer as the model writes it (plain text; the stored answer, with its citations, replaces it).
  view.onAnswerText = (piece, restart) => {
    let preview = $(".turn-stream", item);
    if (!preview) {
      preview = document.createElement("p");
      preview.className = "turn-stream";
      preview.setAttribute("aria-busy", "true");
      card.before(preview);
    }
    preview.textContent = restart ? piece : preview.textContent + piece;
  };
  view.render(job);
  return { item, view };
}

/** A question that ended without an answer (failed or canceled): a partial answer of it is no answer. */
function markUnanswered(item) {
  item.classList.remove("pending");
  item.classList.add("unanswered");
  const preview = $(".turn-stream", item);
  if (preview) preview.remove();
}

/** A turn still being answered: its question and its job card; the answer replaces it when the job ends. */
function attachQuestion(doc, job) {
  const { item, view } = pendingTurn(job, $("#thread"), $("#thread-empty"), "Answering");
  const finished = async (final) => {
    if (final && final.status !== "succeeded") markUnanswered(item);
    if (state.doc !== doc || !final || final.status !== "succeeded" || !final.result_id) return;
    try {
      const answer = await api(`/v1/answers/${enc(final.result_id)}`);
      if (state.doc !== doc) return;
      const turn = answerTurn(answer, final);
      turn.dataset.time = answer.created_at || item.dataset.time;
      // How the page followed the job (events or polling) stays on the answered turn, for diagnosis.
      if (view.root.dataset.transport) turn.dataset.transport = view.root.dataset.transport;
      item.replaceWith(turn);
      countTurns();
      turn.scrollIntoView({ block: "nearest" });
      loadHistory(doc);
    } catch (err) {
      view.transientError(err);
    }
  };
  if (TERMINAL.has(job.status)) finished(job);
  else watchJob(job.id, view).done.then(finished);
}

/** The answer text (safe Markdown) with each [S3] label turned into numbered citation buttons. */
function answerBody(answer, container, open) {
  const byLabel = new Map();
  for (const c of answer.citations) {
    if (!byLabel.has(c.label)) byLabel.set(c.label, []);
    byLabel.get(c.label).push(c);
  }
  // A collection's answer is written with the citations' own numbers ([2]); a document's with its passage
  // labels ([S3]), each of which may stand for several citations.
  const numbered = answer.citations.some((c) => c.document_id);
  const byNumber = new Map(answer.citations.map((c) => [String(c.n), c]));
  const cite = (text) => {
    const fragment = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(numbered ? CITATION_NUMBERS : CITATION_BRACKET)) {
      fragment.append(text.slice(last, match.index));
      last = match.index + match[0].length;
      const cited = numbered
        ? (match[1].match(/\d+/g) || []).map((n) => byNumber.get(n)).filter(Boolean)
        : (match[1].match(/S\d+/g) || []).flatMap((label) => byLabel.get(label) || []);
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
        ref.setAttribute("aria-label", `Citation ${c.n}: show the evidence${c.filename ? ` in ${c.filename}` : ""}`);
        ref.addEventListener("click", () => open(c));
        sup.append(ref);
      }
      fragment.append(sup);
    }
    fragment.append(text.slice(last));
    return fragment;
  };
  container.textContent = "";
  container.append(renderMarkdown(answer.answer, cite));
}

function strategyLine(answer, element) {
  element.textContent = "";
  const label = document.createElement("strong");
  label.textContent = "Strategy: ";
  const name = document.createElement("span");
  name.className = "strategy-name";
  name.textContent = answer.strategy;
  const reason = document.createElement("span");
  reason.className = "strategy-reason";
  reason.textContent = answer.strategy_reason ? ` (${answer.strategy_reason})` : "";
  element.append(label, name, reason);
  const plan = planLine(answer);
  if (plan) {
    const line = document.createElement("div");
    line.className = answer.stopped_reason ? "strategy-plan stopped" : "strategy-plan muted";
    line.textContent = plan;
    element.append(line);
  }
}

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

/** Calls, tokens, cost and time of the answer itself, and of its whole job when that did more (a tree build). */
function figures(answer, element, job) {
  const own = [answer.model, ...usageLine(answer)];
  if (answer.latency_s) own.push(`${answer.latency_s.toFixed(1)} s`);
  if (answer.dropped_citations) {
    own.push(`${answer.dropped_citations} unverifiable citation${answer.dropped_citations === 1 ? "" : "s"} removed`);
  }
  element.textContent = `This ${answer.kind === "summary" ? "summary" : "answer"}: ${own.join(" · ")}`;
  const addJob = (full) => {
    if (!full || full.llm_calls <= answer.llm_calls) {
      element.dataset.includesBuild = "false";
      return;
    }
    const took = jobSeconds(full);
    const built = answer.strategy === "tree" ? "building the summary tree" : "the work before this answer";
    element.dataset.includesBuild = "true";
    element.textContent +=
      ` — whole job, including ${built}: ${usageLine(full).join(" · ")}` + (took != null ? ` · ${formatDuration(took)}` : "");
  };
  if (job) addJob(job);
  else if (answer.job_id) api(`/v1/jobs/${enc(answer.job_id)}`).then(addJob).catch(() => {});
}

function citationList(answer, list, open) {
  list.textContent = "";
  for (const c of answer.citations) {
    const item = document.createElement("li");
    item.value = c.n;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "citation";
    button.dataset.n = c.n;
    button.textContent = `“${truncate(c.quote, 280)}”`;
    const inDoc = c.filename ? `in ${c.filename}` : "in the document";
    button.setAttribute("aria-label", `Citation ${c.n}: show “${truncate(c.quote, 80)}” ${inDoc}`);
    button.addEventListener("click", () => open(c));
    const where = document.createElement("span");
    where.className = "muted citation-where";
    const page = c.page != null ? `page ${c.page} · ` : "";
    where.textContent = `${page}passage ${c.label} · characters ${number(c.start)}–${number(c.end)}`;
    if (c.filename) {
      const source = document.createElement("span");
      source.className = "citation-document";
      source.textContent = c.filename;
      item.append(source);
    }
    item.append(button, where);
    list.append(item);
  }
}

async function fetchSpan(start, end) {
  if (!state.doc) return "";
  const span = await api(`/v1/documents/${enc(state.doc.id)}/text?start=${start}&end=${end}`);
  return truncate(span.text.replace(/\s+/g, " ").trim(), 220);
}

/**
 * Fill an answer panel (a turn of the thread, or the summary). `open(citation)` shows a citation in the
 * reader (the open document's by default); `fetchText(start, end)` gives the trace its passages' text.
 */
function fillAnswer(panel, answer, job, { open = (c) => openReader(state.doc, answer, c.n), fetchText = fetchSpan } = {}) {
  answerBody(answer, $(".answer-text", panel), open);
  strategyLine(answer, $(".answer-strategy", panel));
  figures(answer, $(".answer-stats", panel), job);
  citationList(answer, $(".citations", panel), open);
  $(".no-citations", panel).hidden = answer.citations.length > 0;
  const old = $(".trace", panel);
  if (old) old.remove();
  const trace = renderTrace(answer, fetchText);
  if (trace) $(".answer-trace", panel).append(trace);
  panel.dataset.answerId = answer.id;
}

function answerTurn(answer, job, options = {}) {
  const item = document.createElement("li");
  item.className = "turn";
  const question = document.createElement("p");
  question.className = "turn-question";
  question.textContent = answer.question || "Summary";
  const article = $("#answer-template").content.firstElementChild.cloneNode(true);
  item.append(question, article);
  fillAnswer(article, answer, job, options);
  return item;
}

function initConversation() {
  $("#thread-select").addEventListener("change", (event) => {
    if (state.doc) showConversation(state.doc, event.target.value || null);
  });
  $("#thread-new").addEventListener("click", () => {
    if (!state.doc) return;
    showConversation(state.doc, null);
    $("#question").focus();
  });
  const exportText = async () => request(`/v1/conversations/${enc(state.conversationId)}/export`, { accept: "text/markdown" });
  $("#thread-export").addEventListener("click", async () => {
    if (!state.conversationId) return;
    try {
      const text = await exportText();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([text], { type: "text/markdown" }));
      link.download = `${(state.doc.filename || "conversation").replace(/\.[^.]+$/, "")}-conversation.md`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      $("#thread-status").textContent = "Exported as Markdown.";
    } catch (err) {
      showError($("#ask-error"), err);
    }
  });
  $("#thread-copy").addEventListener("click", async () => {
    if (!state.conversationId) return;
    try {
      const text = await exportText();
      await navigator.clipboard.writeText(text);
      $("#thread-status").textContent = "Copied as Markdown.";
    } catch (err) {
      if (err instanceof ApiError) showError($("#ask-error"), err);
      else $("#thread-status").textContent = "This browser did not allow copying; use Export instead.";
    }
  });
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
    try {
      const body = { question, strategy: $("#strategy").value };
      if (state.conversationId) body.conversation_id = state.conversationId;
      const job = await api(`/v1/documents/${enc(doc.id)}/questions`, { method: "POST", json: body });
      if (state.doc !== doc) return;
      $("#question").value = "";
      const thread = job.params.conversation_id;
      if (thread && thread !== state.conversationId) {
        await loadConversations(doc, thread); // a new thread: list it and open it
        if (state.doc !== doc) return;
      }
      attachQuestion(doc, job);
    } catch (err) {
      showError(errorBox, err);
    } finally {
      if (state.doc === doc) button.disabled = false;
    }
  });
}

// ---------------------------------------------------------------- summaries and history

function attachSummary(doc, job) {
  const view = new JobView($("#summary-job"), "Summarizing");
  view.render(job);
  const show = async (final) => {
    if (state.doc !== doc || !final || final.status !== "succeeded" || !final.result_id) return;
    try {
      const answer = await api(`/v1/answers/${enc(final.result_id)}`);
      if (state.doc !== doc) return;
      fillAnswer($("#summary"), answer, final);
      $("#summary").hidden = false;
      loadHistory(doc);
    } catch (err) {
      showError($("#summary-error"), err);
    }
  };
  if (TERMINAL.has(job.status)) return show(job);
  return watchJob(job.id, view).done.then(show);
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
      await attachSummary(doc, job);
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
    button.addEventListener("click", async () => {
      if (answer.kind === "summary") {
        fillAnswer($("#summary"), answer);
        $("#summary").hidden = false;
        $("#summary").scrollIntoView({ block: "nearest" });
      } else if (answer.conversation_id) {
        await showConversation(doc, answer.conversation_id);
        $("#thread").scrollIntoView({ block: "nearest" });
      }
    });
    item.append(button);
    list.append(item);
  }
  $("#history-empty").hidden = answers.length > 0;
}

// ---------------------------------------------------------------- collections: several documents as one scope

/** The sidebar's line about the checked documents, and the buttons that gather them. */
function showScope() {
  const n = state.checked.size;
  const names = [...state.checked.values()];
  $("#scope-status").textContent = n
    ? `${n} document${n === 1 ? "" : "s"} checked: ${truncate(names.join(", "), 160)}.`
    : "Check documents to ask across several at once.";
  $("#scope-ask").disabled = n === 0;
  $("#scope-clear").hidden = n === 0;
  $("#collection-add").hidden = n === 0 || !state.collection;
}

function uncheckAll() {
  state.checked.clear();
  for (const box of document.querySelectorAll(".document-check")) box.checked = false;
  showScope();
}

function markCurrentCollection() {
  for (const item of document.querySelectorAll(".collection-item")) {
    if (state.collection && item.dataset.collectionId === state.collection.id) item.setAttribute("aria-current", "true");
    else item.removeAttribute("aria-current");
  }
}

async function loadCollections() {
  const list = $("#collections-list");
  let items;
  try {
    items = await api("/v1/collections");
  } catch (err) {
    showError($("#collections-error"), err);
    list.textContent = "";
    $("#collections-empty").hidden = true;
    return;
  }
  $("#collections-error").textContent = "";
  list.textContent = "";
  for (const c of items) {
    const item = document.createElement("li");
    item.className = "document-item collection-item";
    item.dataset.collectionId = c.id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "collection-open link";
    open.textContent = c.name;
    open.addEventListener("click", () => openCollection(c.id, { scroll: true }));
    const meta = document.createElement("span");
    meta.className = "muted document-meta";
    meta.textContent = `${number(c.n_documents)} document${c.n_documents === 1 ? "" : "s"}`;
    item.append(open, meta);
    list.append(item);
  }
  $("#collections-empty").hidden = items.length > 0;
  markCurrentCollection();
}

const sameMembers = (detail, ids) =>
  detail.documents.length === ids.length && detail.documents.every((d) => ids.includes(d.document_id));

/** Gather the checked documents into a collection (one with exactly these members is reused) and open it. */
async function askAcrossChecked() {
  const ids = [...state.checked.keys()];
  if (!ids.length) return;
  const errorBox = $("#scope-error");
  errorBox.textContent = "";
  const button = $("#scope-ask");
  button.disabled = true;
  const stamp = new Date().toISOString().slice(0, 16).replace("T", " ");
  let name = `${truncate([...state.checked.values()].join(", "), 150)} (${stamp})`;
  try {
    let created = null;
    for (let attempt = 0; !created && attempt < 3; attempt += 1) {
      try {
        created = await api("/v1/collections", { method: "POST", json: { name, document_ids: ids } });
      } catch (err) {
        if (!(err instanceof ApiError) || err.code !== "collection_exists") throw err;
        const existing = await api(`/v1/collections/${enc(name)}`);
        if (sameMembers(existing, ids)) created = existing;
        else name = `${name.replace(/ #\d+$/, "")} #${attempt + 2}`;
      }
    }
    if (!created) throw new ApiError(409, "collection_exists", "A collection of that name exists; rename or delete it.");
    uncheckAll();
    await loadCollections();
    await openCollection(created.id, { scroll: true, indexing: created.indexing || [] });
  } catch (err) {
    showError(errorBox, err);
  } finally {
    showScope();
  }
}

function closeCollection({ quiet = false } = {}) {
  if (!state.collection) return;
  stopWatchers();
  state.collection = null;
  state.collectionConversationId = null;
  $("#collection").hidden = true;
  for (const id of ["#collection-thread", "#collection-indexing", "#collection-error", "#collection-ask-error"]) {
    $(id).textContent = "";
  }
  $("#collection-question").value = "";
  markCurrentCollection();
  showScope();
  if (!quiet) {
    $("#welcome").hidden = false;
    updateHash();
  }
}

function collectionDocuments(detail) {
  const list = $("#collection-documents");
  list.textContent = "";
  for (const d of detail.documents) {
    const item = document.createElement("li");
    item.className = "collection-document";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = d.filename;
    open.title = `Open ${d.filename}`;
    open.addEventListener("click", () => openDocument(d.document_id, { scroll: true }));
    const meta = document.createElement("span");
    meta.className = "muted";
    meta.textContent = `${number(d.n_tokens)} tokens`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary small";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${d.filename} from this collection`);
    remove.addEventListener("click", () => changeMembers(detail, "remove", [d.document_id]));
    item.append(open, meta, remove);
    list.append(item);
  }
  const tokens = detail.documents.reduce((sum, d) => sum + d.n_tokens, 0);
  $("#collection-meta").textContent =
    `${number(detail.n_documents)} document${detail.n_documents === 1 ? "" : "s"} · ${number(tokens)} tokens · created ${formatDate(detail.created_at)}`;
}

/** Add the checked documents to the open collection, or remove one; the list shows the new members. */
async function changeMembers(detail, how, ids) {
  const errorBox = $("#collection-error");
  errorBox.textContent = "";
  let updated;
  try {
    updated =
      how === "add"
        ? await api(`/v1/collections/${enc(detail.id)}/documents`, { method: "POST", json: { document_ids: ids } })
        : await api(`/v1/collections/${enc(detail.id)}/documents/${enc(ids[0])}`, { method: "DELETE" });
  } catch (err) {
    showError(errorBox, err);
    return;
  }
  if (state.collection !== detail) return;
  updated.indexing = updated.indexing || [];
  Object.assign(detail, updated);
  collectionDocuments(detail);
  if (how === "add") uncheckAll();
  attachIndexing(detail, updated.indexing);
  loadCollections();
}

/** The index jobs started as documents joined: a progress card each, gone when it succeeds. */
function attachIndexing(detail, indexing) {
  for (const entry of indexing) {
    const member = detail.documents.find((d) => d.document_id === entry.document_id);
    const view = new JobView($("#collection-indexing"), `Indexing ${member ? member.filename : "a document"}`, {
      replace: false,
    });
    api(`/v1/jobs/${enc(entry.job_id)}`)
      .then((job) => {
        if (state.collection !== detail) return;
        view.render(job);
        const settle = (final) => {
          if (final && final.status === "succeeded") view.root.remove();
        };
        if (TERMINAL.has(job.status)) settle(job);
        else watchJob(job.id, view).done.then(settle);
      })
      .catch((err) => view.transientError(err));
  }
}

async function openCollection(id, { scroll = false, indexing = [] } = {}) {
  let detail;
  try {
    detail = await api(`/v1/collections/${enc(id)}`);
  } catch (err) {
    showError($("#collections-error"), err);
    return;
  }
  closeDocument();
  closeCollection({ quiet: true });
  state.collection = detail;
  $("#welcome").hidden = true;
  $("#collection-title").textContent = detail.name;
  collectionDocuments(detail);
  $("#collection-empty").hidden = false;
  $("#collection-ask-button").disabled = false;
  const section = $("#collection");
  section.hidden = false;
  updateHash();
  markCurrentCollection();
  showScope();
  if (scroll && window.matchMedia(NARROW).matches) section.scrollIntoView({ block: "start" });
  attachIndexing(detail, indexing);
  await loadCollectionThread(detail);
}

/** Open a collection answer's citation in the reader, on the document it is from (its citations marked). */
async function openCitedDocument(answer, citation) {
  let doc;
  try {
    doc = await api(`/v1/documents/${enc(citation.document_id)}`);
  } catch (err) {
    showError($("#collection-ask-error"), err);
    return;
  }
  const own = { ...answer, citations: answer.citations.filter((c) => c.document_id === doc.id) };
  await openReader(doc, own, citation.n);
}

function collectionAnswerTurn(answer, job) {
  const turn = answerTurn(answer, job, { open: (c) => openCitedDocument(answer, c), fetchText: async () => "" });
  turn.classList.add("collection-turn");
  return turn;
}

/** The collection's threads in the menu (newest first), then the chosen one (`latest`: the newest) shown. */
async function loadCollectionThread(detail, choose = "latest") {
  let threads = [];
  try {
    threads = await api(`/v1/collections/${enc(detail.id)}/conversations`);
  } catch (err) {
    showError($("#collection-ask-error"), err);
  }
  if (state.collection !== detail) return;
  await showCollectionConversation(detail, fillThreadMenu($("#collection-thread-select"), threads, choose));
}

function countCollectionTurns() {
  countMenuTurns($("#collection-thread-select"), state.collectionConversationId, $("#collection-thread"));
}

/**
 * Show one thread of the collection: its answers, and a card for each of its questions still being
 * answered or that ended without an answer. The next question joins it (a follow-up reads its turns).
 */
async function showCollectionConversation(detail, id) {
  state.collectionConversationId = id;
  $("#collection-thread-select").value = id || "";
  const thread = $("#collection-thread");
  const empty = $("#collection-empty");
  thread.textContent = "";
  empty.hidden = Boolean(id);
  if (!id) return;
  let conversation;
  try {
    conversation = await api(`/v1/conversations/${enc(id)}`);
  } catch (err) {
    showError($("#collection-ask-error"), err);
    return;
  }
  if (state.collection !== detail || state.collectionConversationId !== id) return;
  for (const answer of conversation.items) placeTurn(collectionAnswerTurn(answer), answer.created_at, thread, empty);
  let recent = [];
  try {
    recent = await api("/v1/jobs?limit=100");
  } catch (err) {
    showError($("#collection-ask-error"), err);
  }
  if (state.collection !== detail || state.collectionConversationId !== id) return;
  for (const job of recent) {
    const params = job.params || {};
    const mine = job.kind === "ask_collection" && params.collection_id === detail.id && params.conversation_id === id;
    if (mine && job.status !== "succeeded") attachCollectionQuestion(detail, job);
  }
}

/** A question across the collection being answered: its card, replaced by the answer when the job ends. */
function attachCollectionQuestion(detail, job) {
  const thread = $("#collection-thread");
  const { item, view } = pendingTurn(job, thread, $("#collection-empty"), "Answering across the collection");
  const finished = async (final) => {
    if (final && final.status !== "succeeded") markUnanswered(item);
    if (state.collection !== detail || !final || final.status !== "succeeded" || !final.result_id) return;
    try {
      const answers = await api(`/v1/collections/${enc(detail.id)}/answers?limit=100`);
      const answer = answers.find((a) => a.id === final.result_id);
      if (!answer) throw new ApiError(0, "answer_missing", "The answer was written but is not listed yet; reopen the collection.");
      if (state.collection !== detail) return;
      const turn = collectionAnswerTurn(answer, final);
      turn.dataset.time = answer.created_at || item.dataset.time;
      item.replaceWith(turn);
      countCollectionTurns();
      turn.scrollIntoView({ block: "nearest" });
    } catch (err) {
      view.transientError(err);
    }
  };
  if (TERMINAL.has(job.status)) finished(job);
  else watchJob(job.id, view).done.then(finished);
}

function initCollections() {
  showScope();
  $("#scope-ask").addEventListener("click", askAcrossChecked);
  $("#scope-clear").addEventListener("click", uncheckAll);
  $("#collections-refresh").addEventListener("click", loadCollections);
  $("#collection-close").addEventListener("click", () => closeCollection());
  $("#collection-thread-select").addEventListener("change", (event) => {
    if (state.collection) showCollectionConversation(state.collection, event.target.value || null);
  });
  $("#collection-thread-new").addEventListener("click", () => {
    if (!state.collection) return;
    showCollectionConversation(state.collection, null);
    $("#collection-question").focus();
  });
  $("#collection-add").addEventListener("click", () => {
    if (state.collection && state.checked.size) changeMembers(state.collection, "add", [...state.checked.keys()]);
  });
  $("#collection-delete").addEventListener("click", async () => {
    const detail = state.collection;
    if (!detail || !window.confirm(`Delete the collection “${detail.name}” and its answers? Its documents stay.`)) return;
    try {
      await api(`/v1/collections/${enc(detail.id)}`, { method: "DELETE" });
    } catch (err) {
      showError($("#collection-error"), err);
      return;
    }
    closeCollection();
    loadCollections();
  });
  $("#collection-ask-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const detail = state.collection;
    if (!detail) return;
    const errorBox = $("#collection-ask-error");
    const question = $("#collection-question").value.trim();
    errorBox.textContent = "";
    if (!question) {
      showError(errorBox, new ApiError(0, "empty_question", "Type a question first."));
      return;
    }
    const button = $("#collection-ask-button");
    button.disabled = true;
    try {
      const body = { question, strategy: $("#collection-strategy").value };
      if (state.collectionConversationId) body.conversation_id = state.collectionConversationId;
      const job = await api(`/v1/collections/${enc(detail.id)}/questions`, { method: "POST", json: body });
      if (state.collection !== detail) return;
      $("#collection-question").value = "";
      const joined = job.params.conversation_id;
      if (joined && joined !== state.collectionConversationId) {
        await loadCollectionThread(detail, joined); // a new thread: list it and open it
        if (state.collection !== detail) return;
      }
      attachCollectionQuestion(detail, job);
    } catch (err) {
      showError(errorBox, err);
    } finally {
      if (state.collection === detail) button.disabled = false;
    }
  });
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
  initConversation();
  initAsk();
  initSummary();
  initCollections();
  initReader({ api, showError });
  $("#documents-refresh").addEventListener("click", () => loadDocuments());
  $("#page-prev").addEventListener("click", () => loadDocuments(state.offset - PAGE_SIZE));
  $("#page-next").addEventListener("click", () => loadDocuments(state.offset + PAGE_SIZE));
  $("#document-close").addEventListener("click", closeDocument);
  checkHealth();
  loadCollections();
  loadDocuments(0).then(() => {
    const match = location.hash.match(/^#doc=([^&]+)(?:&c=([^&]+))?/);
    if (match) openDocument(decodeURIComponent(match[1]), { conversationId: match[2] ? decodeURIComponent(match[2]) : null });
    const scope = location.hash.match(/^#collection=([^&]+)/);
    if (scope) openCollection(decodeURIComponent(scope[1]));
  });
}

init();
