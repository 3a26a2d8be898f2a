// The page at "/": ask a question, stream the answer, show cited passages.
// Security: text from the server (answers, passages, sources, errors) is only
// ever put into the page with textContent / text nodes, never as HTML.
"use strict";

(function () {
  const KEY_STORE = "rag-api-key";
  const MARKER = /\[(\d+)\]/g;

  const $ = (id) => document.getElementById(id);
  const form = $("ask-form");
  const question = $("question");
  const askButton = $("ask-button");
  const authForm = $("auth-form");
  const authMessage = $("auth-message");
  const keyInput = $("api-key");
  const result = $("result");
  const statusLine = $("status");
  const answerBox = $("answer");
  const abstainedBox = $("abstained");
  const abstainedText = $("abstained-text");
  const errorBox = $("error");
  const errorText = $("error-text");
  const timing = $("timing");
  const citationsBox = $("citations");
  const citationList = $("citation-list");

  let memoryKey = null; // used when sessionStorage is unavailable
  let pending = null; // the question waiting for an API key
  let controller = null;

  function getKey() {
    try { return window.sessionStorage.getItem(KEY_STORE) || memoryKey; } catch (e) { return memoryKey; }
  }

  function setKey(key) {
    memoryKey = key;
    try { window.sessionStorage.setItem(KEY_STORE, key); } catch (e) { /* memory only */ }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // --- states ---------------------------------------------------------------

  function reset() {
    clear(answerBox);
    clear(citationList);
    answerBox.hidden = true;
    answerBox.classList.remove("streaming");
    abstainedBox.hidden = true;
    errorBox.hidden = true;
    timing.hidden = true;
    citationsBox.hidden = true;
    statusLine.textContent = "";
  }

  function setBusy(busy) {
    result.setAttribute("aria-busy", busy ? "true" : "false");
    askButton.disabled = busy;
    askButton.textContent = busy ? "Asking\u2026" : "Ask";
  }

  function showError(message) {
    answerBox.hidden = true;
    abstainedBox.hidden = true;
    citationsBox.hidden = true;
    statusLine.textContent = "";
    errorText.textContent = message || "unknown error";
    errorBox.hidden = false;
  }

  function showAbstained(text) {
    clear(answerBox);
    answerBox.hidden = true;
    citationsBox.hidden = true;
    abstainedText.textContent = text || "The documents do not contain an answer to this question.";
    abstainedBox.hidden = false;
  }

  function askForKey(message) {
    authMessage.textContent = message
      ? "This server needs an API key (" + message + ")."
      : "This server needs an API key.";
    authForm.hidden = false;
    keyInput.value = "";
    keyInput.focus();
  }

  // --- citations --------------------------------------------------------------

  // "p. 3" where the passage has a page (PDF), else "".
  function pageLabel(c) {
    return Number.isInteger(c.page) ? "p. " + c.page : "";
  }

  // The heading path of the passage ("A > B"), "" where the format has none.
  function sectionLabel(c) {
    return typeof c.section === "string" ? c.section : "";
  }

  // Where a passage is, in words, as `rag ask` prints it: "guide.pdf, p. 3 \u2014 A > B".
  function sourceLabel(c) {
    const page = pageLabel(c);
    const section = sectionLabel(c);
    return String(c.source) + (page ? ", " + page : "") + (section ? " \u2014 " + section : "");
  }

  // The button that opens a passage: marker, file name, page and section (what is known);
  // the character offsets only as its tooltip.
  function citationHead(c) {
    const marker = String(c.marker);
    const head = el("button", "citation-head");
    head.type = "button";
    head.setAttribute("aria-expanded", "false");
    head.setAttribute("aria-controls", "passage-" + marker);
    head.appendChild(el("span", "citation-marker", "[" + marker + "]"));
    const where = el("span", "citation-where");
    where.appendChild(el("span", "citation-source", c.source));
    if (pageLabel(c)) where.appendChild(el("span", "citation-page", pageLabel(c)));
    if (sectionLabel(c)) where.appendChild(el("span", "citation-section", sectionLabel(c)));
    head.appendChild(where);
    if (Number.isFinite(c.start) && Number.isFinite(c.end)) {
      head.title = "characters " + c.start + "\u2013" + c.end + " of " + c.source;
    }
    return head;
  }

  function renderCitations(citations) {
    clear(citationList);
    const byMarker = new Map();
    citations.forEach((c) => {
      const marker = String(c.marker);
      byMarker.set(marker, c);
      const item = el("li", "citation");
      item.id = "cite-" + marker;
      item.tabIndex = -1;
      item.dataset.marker = marker;

      const head = citationHead(c);
      head.addEventListener("click", () => togglePassage(item));

      const passage = el("blockquote", "citation-text", c.text);
      passage.id = "passage-" + marker;
      passage.hidden = true;

      item.appendChild(head);
      item.appendChild(passage);
      citationList.appendChild(item);
    });
    citationsBox.hidden = citations.length === 0;
    return byMarker;
  }

  function setOpen(item, open) {
    item.querySelector(".citation-text").hidden = !open;
    item.querySelector(".citation-head").setAttribute("aria-expanded", open ? "true" : "false");
  }

  function togglePassage(item) {
    setOpen(item, item.querySelector(".citation-text").hidden);
  }

  function showCitation(marker) {
    const item = document.getElementById("cite-" + marker);
    if (!item) return;
    citationList.querySelectorAll(".citation.highlight").forEach((other) => {
      other.classList.remove("highlight");
    });
    answerBox.querySelectorAll(".marker.active").forEach((m) => m.classList.remove("active"));
    answerBox.querySelectorAll('.marker[data-marker="' + marker + '"]').forEach((m) => m.classList.add("active"));
    setOpen(item, true);
    item.classList.add("highlight");
    item.scrollIntoView({ block: "nearest", behavior: "smooth" });
    item.focus({ preventScroll: true });
  }

  // The answer as text nodes, with every known [n] marker made a link.
  function renderAnswer(text, byMarker) {
    clear(answerBox);
    answerBox.classList.remove("streaming");
    let last = 0;
    text.replace(MARKER, (match, n, offset) => {
      if (offset > last) answerBox.appendChild(document.createTextNode(text.slice(last, offset)));
      const cited = byMarker.get(n);
      if (cited) {
        const link = el("a", "marker", match);
        link.href = "#cite-" + n;
        link.dataset.marker = n;
        link.setAttribute("aria-label", "Citation " + n + ": " + sourceLabel(cited));
        link.addEventListener("click", (event) => {
          event.preventDefault();
          showCitation(n);
        });
        answerBox.appendChild(link);
      } else {
        answerBox.appendChild(document.createTextNode(match));
      }
      last = offset + match.length;
      return match;
    });
    if (last < text.length) answerBox.appendChild(document.createTextNode(text.slice(last)));
    answerBox.hidden = false;
  }

  function showFinal(data) {
    statusLine.textContent = "";
    const text = typeof data.answer === "string" ? data.answer : "";
    if (data.abstained) {
      showAbstained(text);
      return;
    }
    const byMarker = renderCitations(Array.isArray(data.citations) ? data.citations : []);
    renderAnswer(text, byMarker);
  }

  function showTiming(data) {
    const t = data && data.timings;
    if (!t || !Number.isFinite(t.total_ms)) return;
    let line = (t.total_ms / 1000).toFixed(1) + " s";
    if (data.model) line += " \u00b7 " + data.model;
    timing.textContent = line;
    timing.hidden = false;
  }

  // --- transport --------------------------------------------------------------

  function headers() {
    const h = { "Content-Type": "application/json", "Accept": "text/event-stream, application/json" };
    const key = getKey();
    if (key) h["Authorization"] = "Bearer " + key;
    return h;
  }

  async function errorMessage(response) {
    let message = "";
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) message = String(body.error.message);
    } catch (e) { /* not JSON */ }
    if (!message) message = "HTTP " + response.status + (response.statusText ? " " + response.statusText : "");
    if (response.status === 503) {
      const after = response.headers.get("Retry-After");
      if (after) message += " (try again in " + after + " s)";
    }
    return message;
  }

  // Parse a text/event-stream body; calls onEvent(name, data) per event.
  async function readEvents(response, onEvent) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    const dispatch = (block) => {
      let name = "message";
      const data = [];
      block.split("\n").forEach((line) => {
        if (!line || line[0] === ":") return;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value[0] === " ") value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      });
      if (data.length) onEvent(name, data.join("\n"));
    };
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      buffer = buffer.replace(/\r\n|\r(?!$)/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        dispatch(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
      if (done) {
        if (buffer.trim()) dispatch(buffer);
        return;
      }
    }
  }

  async function ask(text) {
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = controller;
    reset();
    setBusy(true);
    statusLine.textContent = "Searching the documents\u2026";
    let finished = false;
    try {
      const response = await fetch("/v1/ask", {
        method: "POST",
        headers: headers(),
        body: JSON.stringify({ question: text, stream: true }),
        signal: mine.signal,
      });
      if (response.status === 401) {
        pending = text;
        statusLine.textContent = "";
        askForKey(await errorMessage(response));
        return;
      }
      if (!response.ok) {
        showError(await errorMessage(response));
        return;
      }
      authForm.hidden = true;
      const type = response.headers.get("Content-Type") || "";
      if (!type.includes("text/event-stream")) { // a plain JSON answer
        const data = await response.json();
        showFinal(data);
        showTiming(data);
        return;
      }
      statusLine.textContent = "Answering\u2026";
      await readEvents(response, (name, raw) => {
        if (mine !== controller) return;
        let data;
        try { data = JSON.parse(raw); } catch (e) { return; }
        if (name === "token") {
          answerBox.hidden = false;
          answerBox.classList.add("streaming");
          answerBox.appendChild(document.createTextNode(String(data.text || "")));
        } else if (name === "citations") {
          showFinal(data);
          finished = true;
        } else if (name === "done") {
          if (!finished) showFinal(data);
          finished = true;
          showTiming(data);
        } else if (name === "error") {
          finished = true;
          const err = data && data.error;
          showError(err && err.message ? String(err.message) : "the answer failed");
        }
      });
      if (!finished && mine === controller) showError("the answer stream ended early");
    } catch (e) {
      if (e && e.name === "AbortError") return;
      if (mine === controller) showError("Could not reach the server: " + (e && e.message ? e.message : e));
    } finally {
      if (mine === controller) {
        controller = null;
        setBusy(false);
        statusLine.textContent = "";
      }
    }
  }

  // --- wiring -------------------------------------------------------------------

  // The pure rendering of one source, for tests/test_web.py to check with any citation.
  window.ragPage = Object.freeze({ citationHead: citationHead, sourceLabel: sourceLabel });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text) {
      reset();
      showError("Type a question first.");
      question.focus();
      return;
    }
    ask(text);
  });

  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      if (askButton.disabled) return;
      if (form.requestSubmit) form.requestSubmit();
      else askButton.click();
    }
  });

  authForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = keyInput.value.trim();
    if (!key) return;
    setKey(key);
    keyInput.value = "";
    authForm.hidden = true;
    const again = pending || question.value.trim();
    pending = null;
    if (again) ask(again);
  });
})();
