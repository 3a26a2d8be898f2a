// The conversation: each question with its answer streamed in, follow-ups sent
// with the earlier turns (POST /v1/chat/completions), stop, copy, and the sources
// of every answer with the cited passage shown in its context.

import { ApiError, chat, getJSON } from "./api.js";
import {
  answerNodes, citationHead, clear, contextNodes, copyText, el, searchedAs, timingLabel, titleOf,
} from "./render.js";

const HISTORY_TURNS = 6; // earlier turns sent with a question, as `rag chat` keeps them

// ui: {log, empty}
// hooks: {needKey(message, retry), announce(text), scope() -> [{source, title}], onBusy(busy),
//         onUnknownSources()}
export function createConversation(ui, hooks) {
  const turns = [];
  const chunks = new Map(); // chunk_id -> Promise of the chunk (or null)
  let controller = null;
  let counter = 0;

  function setBusy(busy) {
    ui.log.setAttribute("aria-busy", busy ? "true" : "false");
    hooks.onBusy(busy);
  }

  function part(parent, tag, className, text, hidden) {
    const node = el(tag, className, text);
    if (hidden) node.hidden = true;
    parent.appendChild(node);
    return node;
  }

  function newTurn(question, scope) {
    counter += 1;
    const n = counter;
    const root = el("article", "turn");
    root.id = "turn-" + n;
    root.setAttribute("aria-label", "Question " + n);
    const you = part(root, "div", "you");
    part(you, "span", "visually-hidden", "You asked: ");
    part(you, "p", "you-text", question);
    if (scope.length) {
      part(root, "p", "turn-scope", "Only from: " + scope.map(titleOf).join(", "));
    }
    const searched = part(root, "p", "searched-as", null, true);
    const reply = part(root, "div", "reply");
    const status = part(reply, "p", "turn-status");
    const answer = part(reply, "div", "answer", null, true);
    const abstained = part(reply, "div", "state state-abstained", null, true);
    part(abstained, "h3", null, "Not in the documents");
    const abstainedText = part(abstained, "p");
    const error = part(reply, "div", "state state-error", null, true);
    error.setAttribute("role", "alert");
    part(error, "h3", null, "Something went wrong");
    const errorText = part(error, "p");
    const stopped = part(reply, "p", "state state-stopped", "Stopped before the answer was finished.", true);
    const tools = part(reply, "div", "turn-tools", null, true);
    const copy = part(tools, "button", "copy quiet", "Copy answer");
    copy.type = "button";
    const retry = part(tools, "button", "retry quiet", "Ask again");
    retry.type = "button";
    const timing = part(tools, "span", "timing");
    const sources = part(reply, "section", "citations", null, true);
    sources.setAttribute("aria-label", "Sources of answer " + n);
    part(sources, "h3", null, "Sources");
    const list = part(sources, "ol", "citation-list");

    const turn = {
      n: n, question: question, scope: scope.map((d) => d.source), final: null, done: false,
      el: { root, searched, status, answer, abstained, abstainedText, error, errorText, stopped, tools, copy,
            retry, timing, sources, list },
    };
    copy.addEventListener("click", () => copyAnswer(turn));
    retry.addEventListener("click", () => { if (!controller) run(turn); });
    ui.empty.hidden = true;
    ui.log.appendChild(root);
    turns.push(turn);
    return turn;
  }

  function resetTurn(turn) {
    const e = turn.el;
    turn.final = null;
    turn.done = false;
    clear(e.answer);
    clear(e.list);
    [e.answer, e.abstained, e.error, e.stopped, e.tools, e.sources, e.searched].forEach((node) => {
      node.hidden = true;
    });
    e.answer.classList.remove("streaming", "partial");
    e.status.textContent = "";
  }

  // The earlier answered turns as chat messages, as they were typed (the server
  // resolves each earlier follow-up with the turns before it).
  function history(turn) {
    const done = turns.filter((t) => t.n < turn.n && t.done && t.final).slice(-HISTORY_TURNS);
    const messages = [];
    done.forEach((t) => {
      messages.push({ role: "user", content: t.question });
      messages.push({ role: "assistant", content: t.final.answer });
    });
    return messages;
  }

  async function run(turn) {
    if (controller) return;
    controller = new AbortController();
    const mine = controller;
    resetTurn(turn);
    setBusy(true);
    const e = turn.el;
    e.status.textContent = "Searching the documents\u2026";
    turn.el.root.scrollIntoView({ block: "nearest" });
    const messages = history(turn).concat([{ role: "user", content: turn.question }]);
    try {
      const final = await chat(messages, turn.scope, mine.signal, {
        onStart() {
          if (mine === controller && !e.answer.firstChild) e.status.textContent = "Answering\u2026";
        },
        onText(piece) {
          if (mine !== controller) return;
          e.status.textContent = "";
          e.answer.hidden = false;
          e.answer.classList.add("streaming");
          e.answer.appendChild(document.createTextNode(piece));
        },
      });
      if (mine === controller) showFinal(turn, final);
    } catch (err) {
      if (err && err.name === "AbortError") {
        showStopped(turn);
      } else if (err instanceof ApiError && err.status === 401) {
        showError(turn, "This server needs an API key; the question is asked again once it is given.");
        hooks.needKey(err.message, () => run(turn));
      } else {
        showError(turn, err instanceof ApiError ? err.message : "Could not reach the server: " + (err && err.message));
        if (err instanceof ApiError && err.status === 404 && turn.scope.length) hooks.onUnknownSources();
      }
    } finally {
      if (mine === controller) {
        controller = null;
        setBusy(false);
      }
    }
  }

  function showFinal(turn, final) {
    const e = turn.el;
    turn.final = final;
    turn.done = true;
    e.status.textContent = "";
    e.answer.classList.remove("streaming");
    const note = searchedAs(turn.question, final.standalone_question);
    if (note) {
      clear(e.searched);
      e.searched.appendChild(document.createTextNode("Searched as: "));
      e.searched.appendChild(el("q", null, note));
      e.searched.hidden = false;
    }
    if (final.abstained) {
      clear(e.answer);
      e.answer.hidden = true;
      e.abstainedText.textContent = final.answer || "The documents do not contain an answer to this question.";
      e.abstained.hidden = false;
    } else {
      const byMarker = renderSources(turn, final.citations);
      clear(e.answer);
      e.answer.appendChild(answerNodes(final.answer, byMarker, (m) => citeId(turn, m),
                                       (m) => showCitation(turn, m)));
      e.answer.hidden = false;
    }
    e.copy.hidden = final.abstained;
    e.retry.hidden = true;
    e.timing.textContent = timingLabel(final);
    e.tools.hidden = false;
    (final.abstained ? e.abstained : e.answer).scrollIntoView({ block: "nearest" });
  }

  function showStopped(turn) {
    const e = turn.el;
    e.status.textContent = "";
    e.answer.classList.remove("streaming");
    e.answer.classList.add("partial");
    e.stopped.hidden = false;
    e.copy.hidden = true;
    e.retry.hidden = false;
    e.timing.textContent = "";
    e.tools.hidden = false;
    hooks.announce("Stopped.");
  }

  function showError(turn, message) {
    const e = turn.el;
    e.status.textContent = "";
    e.answer.hidden = true;
    e.errorText.textContent = message || "unknown error";
    e.error.hidden = false;
    e.copy.hidden = true;
    e.retry.hidden = false;
    e.timing.textContent = "";
    e.tools.hidden = false;
  }

  // --- sources ------------------------------------------------------------------

  function citeId(turn, marker) { return "t" + turn.n + "-cite-" + marker; }

  function renderSources(turn, citations) {
    const e = turn.el;
    clear(e.list);
    const byMarker = new Map();
    citations.forEach((c) => {
      const marker = String(c.marker);
      byMarker.set(marker, c);
      const item = el("li", "citation");
      item.id = citeId(turn, marker);
      item.tabIndex = -1;
      item.dataset.marker = marker;
      const head = citationHead(c);
      const context = el("div", "citation-context");
      context.id = "t" + turn.n + "-context-" + marker;
      context.hidden = true;
      head.setAttribute("aria-controls", context.id);
      head.addEventListener("click", () => setOpen(item, c, context.hidden));
      item.appendChild(head);
      item.appendChild(context);
      e.list.appendChild(item);
    });
    e.sources.hidden = citations.length === 0;
    turn.citations = byMarker;
    return byMarker;
  }

  function chunk(id) {
    if (!chunks.has(id)) {
      const pending = getJSON("/v1/chunks/" + encodeURIComponent(id)).catch((err) => {
        chunks.delete(id); // try again next time (a key given meanwhile, the server back)
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      });
      chunks.set(id, pending);
    }
    return chunks.get(id);
  }

  // Open (or close) a source; the first opening loads its chunk to show the passage in context.
  function setOpen(item, c, open) {
    const context = item.querySelector(".citation-context");
    context.hidden = !open;
    item.querySelector(".citation-head").setAttribute("aria-expanded", open ? "true" : "false");
    if (open && !context.dataset.loaded) {
      context.dataset.loaded = "loading";
      clear(context);
      context.appendChild(el("p", "context-note", "Loading the passage in its context\u2026"));
      chunk(c.chunk_id).then((found) => {
        clear(context);
        if (!found) {
          context.appendChild(el("p", "context-note",
            "The document has changed or was removed since; this is the cited passage alone."));
        }
        context.appendChild(contextNodes(c, found));
        context.dataset.loaded = "yes";
        const mark = context.querySelector("mark");
        if (mark && item.classList.contains("highlight")) mark.scrollIntoView({ block: "nearest" });
      }).catch((err) => {
        clear(context);
        context.appendChild(el("p", "context-note", "Could not load the context (" + err.message +
          "); this is the cited passage alone."));
        context.appendChild(contextNodes(c, null));
        delete context.dataset.loaded;
        if (err instanceof ApiError && err.status === 401) hooks.needKey(err.message, () => {});
      });
    }
  }

  function showCitation(turn, marker) {
    const item = document.getElementById(citeId(turn, marker));
    const c = turn.citations && turn.citations.get(String(marker));
    if (!item || !c) return;
    ui.log.querySelectorAll(".citation.highlight").forEach((other) => other.classList.remove("highlight"));
    ui.log.querySelectorAll(".marker.active").forEach((m) => m.classList.remove("active"));
    turn.el.answer.querySelectorAll('.marker[data-marker="' + marker + '"]').forEach((m) => m.classList.add("active"));
    item.classList.add("highlight");
    setOpen(item, c, true);
    item.scrollIntoView({ block: "nearest" });
    item.focus({ preventScroll: true });
  }

  // --- copy -----------------------------------------------------------------------

  async function writeClipboard(text) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (e) { /* fall back to a selection */ }
    const area = el("textarea", "offscreen");
    area.value = text;
    area.setAttribute("readonly", "");
    area.setAttribute("aria-hidden", "true");
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }

  async function copyAnswer(turn) {
    if (!turn.final) return;
    const button = turn.el.copy;
    const ok = await writeClipboard(copyText(turn.final));
    button.focus({ preventScroll: true });
    button.textContent = ok ? "Copied" : "Copy failed";
    button.classList.toggle("done", ok);
    hooks.announce(ok ? "Answer copied." : "Could not copy: select the answer and copy it instead.");
    window.setTimeout(() => {
      button.textContent = "Copy answer";
      button.classList.remove("done");
    }, 2000);
  }

  return {
    // Ask `question` (with the conversation so far); false while an answer runs.
    ask(question) {
      if (controller) return false;
      run(newTurn(question, hooks.scope()));
      return true;
    },
    stop() {
      if (!controller) return false;
      controller.abort();
      return true;
    },
    busy: () => controller !== null,
    reset() {
      if (controller) controller.abort();
      turns.splice(0).forEach((t) => t.el.root.remove());
      counter = 0;
      ui.empty.hidden = false;
    },
  };
}
