// How an answer was found, from its stored trace: the tree path with the reason at each node and any
// reverts; each chain worker's notes; the passages attention and shortlist reads scored; the `auto`
// planner's estimates and reason. Everything is inserted as text.

const el = (tag, className, text) => {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined && text !== null) element.textContent = String(text);
  return element;
};

const nodeName = (node) => (Array.isArray(node) ? (node[0] === 0 ? `passage ${node[1]}` : `level ${node[0]} part ${node[1] + 1}`) : "");

function treeSteps(trace) {
  const list = el("ol", "trace-steps trace-tree");
  for (const step of trace) {
    if (!step || !("action" in step)) continue;
    const item = el("li", `trace-step action-${step.action}`);
    const head = el("p", "trace-head");
    const action = el("strong", "trace-action");
    if (step.action === "open") action.textContent = `Opened ${nodeName(step.child)}`;
    else if (step.action === "revert") action.textContent = `Went back from ${nodeName(step.node)}`;
    else if (step.action === "answer") action.textContent = `Answered from passage S${step.segment ?? ""}`;
    else if (step.action === "step_limit") action.textContent = "Stopped at the step limit";
    else if (step.action === "exhausted") action.textContent = "Every part was ruled out";
    else action.textContent = step.action;
    head.append(action);
    if (step.node && step.action === "open") head.append(el("span", "muted", ` from ${nodeName(step.node)}`));
    if (step.invalid) head.append(el("span", "warning-inline", ` (the model's action “${step.model_action}” was unreadable)`));
    item.append(head);
    if (step.reasoning) item.append(el("p", "trace-reason", step.reasoning));
    list.append(item);
  }
  return list;
}

function chainSteps(trace) {
  const list = el("ol", "trace-steps trace-chain");
  for (const step of trace) {
    const item = el("li", "trace-step");
    if (step.role === "manager") {
      item.append(el("p", "trace-head", "The manager wrote the answer from the last worker's notes."));
    } else {
      const [first, last] = step.segments || [];
      const head = el("p", "trace-head");
      head.append(el("strong", null, `Worker ${step.step}`));
      head.append(el("span", "muted", ` read passages S${first}–S${last}${step.resumed ? " (resumed)" : ""}`));
      item.append(head);
      if (step.notes) item.append(el("p", "trace-notes", step.notes));
      else if (step.unit_tokens != null) item.append(el("p", "muted", `notes of ${step.unit_tokens} tokens passed on`));
    }
    list.append(item);
  }
  return list;
}

/** Passages with scores: attention's final evidence, shortlist's re-ranked passages, per-chunk tops. */
function scoredPassages(trace, fetchText) {
  const wrap = el("div", "trace-passages");
  const lists = [];
  for (const step of trace) {
    for (const key of ["evidence", "passages", "ranked", "shortlist"]) {
      if (Array.isArray(step[key]) && step[key].length && typeof step[key][0] === "object") {
        lists.push([step.stage || key, step[key]]);
      }
    }
  }
  for (const [title, passages] of lists) {
    wrap.append(el("h4", null, `${title}: top passages`));
    const table = el("table", "trace-table");
    const head = el("tr");
    for (const name of ["#", "score", "characters", "passage"]) head.append(el("th", null, name));
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const body = el("tbody");
    passages.slice(0, 12).forEach((p, i) => {
      const row = el("tr");
      const score = p.score ?? p.rrf ?? p.bm25 ?? p.attention;
      row.append(el("td", null, i + 1));
      row.append(el("td", "num", score == null ? "" : Number(score).toPrecision(3)));
      row.append(el("td", "num", p.start != null ? `${p.start}–${p.end}` : ""));
      const text = el("td", "trace-quote", p.text || p.quote || "");
      if (!text.textContent && p.start != null && fetchText) fetchText(p.start, p.end).then((t) => (text.textContent = t));
      row.append(text);
      body.append(row);
    });
    table.append(body);
    wrap.append(table);
  }
  return lists.length ? wrap : null;
}

function keyValues(object) {
  const list = el("dl", "trace-kv");
  for (const [key, value] of Object.entries(object || {})) {
    if (value === null || value === undefined || typeof value === "object") continue;
    list.append(el("dt", null, key.replace(/_/g, " ")), el("dd", null, typeof value === "number" ? Number(value.toPrecision(4)) : value));
  }
  return list;
}

/** The planner's choice for `auto`: the reason, and the estimate per strategy it chose from. */
function planView(plan) {
  const wrap = el("div", "trace-plan");
  wrap.append(el("h4", null, "Why this strategy"));
  const chosen = plan.strategy || plan.choice || plan.chosen;
  if (chosen || plan.reason) wrap.append(el("p", null, `${chosen ? `${chosen}: ` : ""}${plan.reason || ""}`));
  let estimates = plan.options || plan.estimates || plan.candidates || [];
  if (!Array.isArray(estimates)) estimates = Object.entries(estimates).map(([name, v]) => ({ strategy: name, ...(typeof v === "object" ? v : { value: v }) }));
  if (estimates.length) {
    const columns = [...new Set(estimates.flatMap((e) => Object.keys(e).filter((k) => typeof e[k] !== "object")))];
    const table = el("table", "trace-table");
    const head = el("tr");
    for (const c of columns) head.append(el("th", null, c.replace(/_/g, " ")));
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const body = el("tbody");
    for (const e of estimates) {
      const row = el("tr", (e.strategy || e.name) === chosen ? "chosen" : "");
      for (const c of columns) {
        const v = e[c];
        row.append(el("td", typeof v === "number" ? "num" : "", v == null ? "" : typeof v === "number" ? Number(v.toPrecision(3)) : v));
      }
      body.append(row);
    }
    table.append(body);
    wrap.append(table);
    if (plan.actual) {
      wrap.append(el("p", "muted", "What the reading took:"));
      wrap.append(keyValues(plan.actual));
    }
  } else {
    wrap.append(keyValues(plan));
  }
  return wrap;
}

/** A <details> "How this answer was found" for an answer, or null when there is nothing to show. */
export function renderTrace(answer, fetchText) {
  const trace = Array.isArray(answer.trace) ? answer.trace : [];
  const parts = [];
  if (answer.plan && typeof answer.plan === "object") parts.push(planView(answer.plan));
  if (answer.strategy === "tree" || trace.some((s) => s && s.action)) parts.push(treeSteps(trace));
  else if (answer.strategy === "chain" || trace.some((s) => s && s.role === "manager")) parts.push(chainSteps(trace));
  const passages = scoredPassages(trace, fetchText);
  if (passages) parts.push(passages);
  if (!parts.length) {
    const generic = trace.filter((s) => s && typeof s === "object").map(keyValues);
    if (!generic.length) return null;
    parts.push(...generic);
  }
  const details = el("details", "trace");
  details.append(el("summary", null, "How this answer was found"));
  details.append(...parts);
  return details;
}
