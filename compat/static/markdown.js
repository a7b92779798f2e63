// A tiny Markdown subset rendered with DOM nodes and textContent only: fenced
// code blocks, inline code, **bold**, paragraphs and line breaks. No HTML from
// the text is ever parsed and no links are made, so model output cannot run
// script (a "<script>" or "javascript:" in a reply stays text).
"use strict";

const FENCE = /^```([\w+-]*)[^\n]*\n([\s\S]*?)(?:^```[ \t]*$|(?![\s\S]))/gm;
const INLINE = /`([^`\n]+)`|\*\*([^*\n]+)\*\*/g;

function appendInline(parent, text) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    parent.append(text.slice(last, match.index));
    const node = document.createElement(match[1] !== undefined ? "code" : "strong");
    node.textContent = match[1] ?? match[2];
    parent.append(node);
    last = match.index + match[0].length;
  }
  parent.append(text.slice(last));
}

function appendParagraphs(parent, text) {
  for (const block of text.split(/\n{2,}/)) {
    if (!block.trim()) continue;
    const p = document.createElement("p");
    block.split("\n").forEach((line, i) => {
      if (i) p.append(document.createElement("br"));
      appendInline(p, line);
    });
    parent.append(p);
  }
}

// Replace the children of `element` with `text` rendered; safe for any text.
function renderMarkdown(element, text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(FENCE)) {
    appendParagraphs(fragment, text.slice(last, match.index));
    const pre = document.createElement("pre");
    const code = document.createElement("code");
    if (match[1]) code.dataset.lang = match[1];
    code.textContent = match[2];
    pre.append(code);
    fragment.append(pre);
    last = match.index + match[0].length;
  }
  appendParagraphs(fragment, text.slice(last));
  element.replaceChildren(fragment);
}
