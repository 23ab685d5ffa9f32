// A small Markdown renderer that builds DOM nodes, never HTML strings.
//
// Answers come from a model, and a model can be talked into writing <script> or <img onerror>; so
// this renderer knows only a handful of constructs (paragraphs, headings, lists, quotes, code, bold,
// italic, inline code, http(s) links) and puts every piece of text into the page with createTextNode.
// Anything else, raw HTML included, shows as the characters it is.

const FENCE = /^\s*(```|~~~)/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
// Inline constructs, in order of precedence: code, bold, italic, link.
const INLINE =
  /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|__(?=\S)([\s\S]*?\S)__|\*(?=[^\s*])([^*]*?[^\s*])\*|(?<![A-Za-z0-9])_(?=[^\s_])([^_]*?[^\s_])_(?![A-Za-z0-9])|\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g;

/** Plain text with the caller's hook (citations) applied, or as a text node. */
function textNodes(text, onText) {
  if (onText) return onText(text);
  return document.createTextNode(text);
}

/** Inline Markdown of one block's text, appended to `parent`. */
export function renderInline(text, parent, onText) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) parent.append(textNodes(text.slice(last, match.index), onText));
    last = match.index + match[0].length;
    if (match[1] !== undefined) {
      const code = document.createElement("code");
      code.textContent = match[2];
      parent.append(code);
    } else if (match[3] !== undefined || match[4] !== undefined) {
      const strong = document.createElement("strong");
      renderInline(match[3] ?? match[4], strong, onText);
      parent.append(strong);
    } else if (match[5] !== undefined || match[6] !== undefined) {
      const em = document.createElement("em");
      renderInline(match[5] ?? match[6], em, onText);
      parent.append(em);
    } else {
      const link = document.createElement("a");
      link.href = match[8]; // only http(s) URLs match, so no javascript: links
      link.rel = "noopener noreferrer nofollow";
      link.target = "_blank";
      renderInline(match[7], link, onText);
      parent.append(link);
    }
  }
  if (last < text.length) parent.append(textNodes(text.slice(last), onText));
}

function paragraph(lines, onText, tag = "p") {
  const element = document.createElement(tag);
  lines.forEach((line, i) => {
    if (i) element.append(document.createElement("br"));
    renderInline(line.trim(), element, onText);
  });
  return element;
}

/**
 * Render Markdown `text` into a DocumentFragment. `onText(text)` may turn plain runs of text into
 * nodes of its own (the page uses it to make [S3] citation labels into buttons).
 */
export function renderMarkdown(text, onText) {
  const fragment = document.createDocumentFragment();
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const fence = line.match(FENCE);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      i += 1;
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      code.textContent = body.join("\n");
      pre.append(code);
      fragment.append(pre);
      continue;
    }
    const heading = line.match(HEADING);
    if (heading) {
      // Answers sit under the page's own h3/h4: their headings start at h4.
      const level = Math.min(6, heading[1].length + 3);
      const element = document.createElement(`h${level}`);
      renderInline(heading[2], element, onText);
      fragment.append(element);
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      fragment.append(document.createElement("hr"));
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const body = [];
      while (i < lines.length && QUOTE.test(lines[i])) body.push(lines[i++].match(QUOTE)[1]);
      const quote = document.createElement("blockquote");
      quote.append(renderMarkdown(body.join("\n"), onText));
      fragment.append(quote);
      continue;
    }
    const bullet = BULLET.test(line);
    const numbered = line.match(NUMBERED);
    if (bullet || numbered) {
      const pattern = bullet ? BULLET : NUMBERED;
      const list = document.createElement(bullet ? "ul" : "ol");
      if (numbered && numbered[1] !== "1") list.start = Number(numbered[1]);
      while (i < lines.length && pattern.test(lines[i])) {
        const match = lines[i].match(pattern);
        const item = [bullet ? match[1] : match[2]];
        i += 1;
        // Indented continuation lines belong to the item.
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !BULLET.test(lines[i]) && !NUMBERED.test(lines[i])) {
          item.push(lines[i++]);
        }
        const li = document.createElement("li");
        item.forEach((part, k) => {
          if (k) li.append(document.createElement("br"));
          renderInline(part.trim(), li, onText);
        });
        list.append(li);
      }
      fragment.append(list);
      continue;
    }
    const body = [];
    while (
      i < lines.length &&
      lines[i].trim() &&
      !FENCE.test(lines[i]) &&
      !HEADING.test(lines[i]) &&
      !QUOTE.test(lines[i]) &&
      !BULLET.test(lines[i]) &&
      !NUMBERED.test(lines[i]) &&
      !RULE.test(lines[i])
    ) {
      body.push(lines[i++]);
    }
    fragment.append(paragraph(body, onText));
  }
  return fragment;
}
