// Pure rendering: DOM nodes from the server's objects. Text from the server
// (answers, passages, titles, sources, errors) only ever goes into the page as
// text nodes (textContent), never as HTML.

const MARKER = /\[(\d+)\]/g;

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

export function plural(n, one, many) {
  return n + " " + (n === 1 ? one : many);
}

// "p. 3" where the passage has a page (PDF), "slide 3" in a slide deck (.pptx),
// else ""; "(OCR)" after a page whose text was read from a picture of it.
export function pageLabel(c) {
  if (!Number.isInteger(c.page)) return "";
  const where = (/\.pptx$/i.test(String(c.source)) ? "slide " : "p. ") + c.page;
  return where + (c.ocr === true ? " (OCR)" : "");
}

// The heading path of the passage ("A > B"), "" where the format has none.
export function sectionLabel(c) {
  return typeof c.section === "string" ? c.section : "";
}

// What people call the document: its title, else its source id.
export function titleOf(d) {
  const title = typeof d.title === "string" ? d.title.trim() : "";
  return title || String(d.source);
}

// Where a passage is, in words: "Harbour Guide (guide.pdf), p. 3 — A > B"
// (the source id only where it is not the title itself).
export function sourceLabel(c) {
  const title = titleOf(c);
  const page = pageLabel(c);
  const section = sectionLabel(c);
  return title + (title !== String(c.source) ? " (" + c.source + ")" : "") +
    (page ? ", " + page : "") + (section ? " \u2014 " + section : "");
}

// The button that opens a source: marker, title, page, section and source id
// (what is known); the character offsets only as its tooltip.
export function citationHead(c) {
  const marker = String(c.marker);
  const head = el("button", "citation-head");
  head.type = "button";
  head.setAttribute("aria-expanded", "false");
  head.appendChild(el("span", "citation-marker", "[" + marker + "]"));
  const where = el("span", "citation-where");
  where.appendChild(el("span", "citation-title", titleOf(c)));
  if (pageLabel(c)) where.appendChild(el("span", "citation-page", pageLabel(c)));
  if (sectionLabel(c)) where.appendChild(el("span", "citation-section", sectionLabel(c)));
  if (titleOf(c) !== String(c.source)) where.appendChild(el("span", "citation-source", c.source));
  head.appendChild(where);
  if (Number.isFinite(c.start) && Number.isFinite(c.end)) {
    head.title = "characters " + c.start + "\u2013" + c.end + " of " + c.source;
  }
  return head;
}

// The passage in its chunk: [before, cited, after] texts, the cited span being
// text[c.start - chunk.start : c.end - chunk.start] of the chunk. A passage that
// runs past either end of its chunk is shown whole; a chunk that does not hold the
// passage (the document changed since) gives null.
export function contextParts(c, chunk) {
  const passage = String(c.text);
  const text = chunk && typeof chunk.text === "string" ? chunk.text : null;
  if (text === null || !Number.isFinite(c.start) || !Number.isFinite(chunk.start)) return null;
  const s = c.start - chunk.start;
  const e = c.end - chunk.start;
  const lo = Math.max(0, s);
  const hi = Math.min(text.length, e);
  if (lo < hi && text.slice(lo, hi) === passage.slice(lo - s, hi - s)) {
    return [text.slice(0, lo), passage, text.slice(hi)];
  }
  const at = passage ? text.indexOf(passage) : -1;
  if (at >= 0) return [text.slice(0, at), passage, text.slice(at + passage.length)];
  return null;
}

// The context block: the chunk's text with the cited span in <mark>; without a
// chunk, the passage alone, marked.
export function contextNodes(c, chunk) {
  const quote = el("blockquote", "context-text");
  const parts = contextParts(c, chunk) || ["", String(c.text), ""];
  if (parts[0]) quote.appendChild(document.createTextNode(parts[0]));
  quote.appendChild(el("mark", "cited", parts[1]));
  if (parts[2]) quote.appendChild(document.createTextNode(parts[2]));
  return quote;
}

// The answer as text nodes, every [n] that has a citation made a link;
// onMarker(n) when one is followed.
export function answerNodes(text, byMarker, linkFor, onMarker) {
  const frag = document.createDocumentFragment();
  let last = 0;
  text.replace(MARKER, (match, n, offset) => {
    if (offset > last) frag.appendChild(document.createTextNode(text.slice(last, offset)));
    const cited = byMarker.get(n);
    if (cited) {
      const link = el("a", "marker", match);
      link.href = "#" + linkFor(n);
      link.dataset.marker = n;
      link.setAttribute("aria-label", "Citation " + n + ": " + sourceLabel(cited));
      link.addEventListener("click", (event) => {
        event.preventDefault();
        onMarker(n);
      });
      frag.appendChild(link);
    } else {
      frag.appendChild(document.createTextNode(match));
    }
    last = offset + match.length;
    return match;
  });
  if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
  return frag;
}

// What "Copy answer" puts on the clipboard: the answer, then its sources.
export function copyText(final) {
  const lines = [String(final.answer)];
  if (final.citations.length) {
    lines.push("", "Sources:");
    final.citations.forEach((c) => {
      lines.push("[" + c.marker + "] " + sourceLabel(c));
      lines.push("    \u201c" + String(c.text).split(/\s+/).join(" ").trim() + "\u201d");
    });
  }
  return lines.join("\n");
}

// "2.1 s · SmolLM2-135M-Instruct.Q4_1.gguf"
export function timingLabel(final) {
  const t = final && final.timings;
  if (!t || !Number.isFinite(t.total_ms)) return "";
  return (t.total_ms / 1000).toFixed(1) + " s" + (final.model ? " \u00b7 " + final.model : "");
}

// The question as searched when it is not what was typed (a follow-up made
// standalone), else "".
export function searchedAs(question, standalone) {
  const norm = (s) => String(s || "").split(/\s+/).join(" ").trim();
  return norm(standalone) && norm(standalone) !== norm(question) ? norm(standalone) : "";
}
