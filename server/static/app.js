// The page at "/": wires the documents panel, the conversation, the composer and
// the API-key form together. No build step; ES modules from this origin only.

import { setKey } from "./api.js";
import { createConversation } from "./conversation.js";
import { createDocuments } from "./documents.js";
import * as render from "./render.js";

const $ = (id) => document.getElementById(id);

const form = $("ask-form");
const question = $("question");
const askButton = $("ask-button");
const stopButton = $("stop-button");
const scopeText = $("scope-text");
const scopeClear = $("scope-clear");
const authForm = $("auth-form");
const authMessage = $("auth-message");
const keyInput = $("api-key");
const liveStatus = $("live-status");
const docsToggle = $("docs-toggle");
const docsCount = $("docs-count");

// --- API key ------------------------------------------------------------------------

const waitingForKey = []; // what to do again once a key is given

function needKey(message, retry) {
  if (retry) waitingForKey.push(retry);
  authMessage.textContent = message
    ? "This server needs an API key (" + message + ")."
    : "This server needs an API key.";
  if (authForm.hidden) {
    authForm.hidden = false;
    keyInput.value = "";
    keyInput.focus();
  }
}

authForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) return;
  setKey(key);
  keyInput.value = "";
  authForm.hidden = true;
  waitingForKey.splice(0).forEach((retry) => retry());
  question.focus();
});

// --- status for screen readers ------------------------------------------------------

let clearTimer = 0;
function announce(text) {
  liveStatus.textContent = text;
  window.clearTimeout(clearTimer);
  clearTimer = window.setTimeout(() => { liveStatus.textContent = ""; }, 5000);
}

// --- documents and conversation -----------------------------------------------------

function showScope() {
  const all = documents.all();
  const chosen = documents.selected();
  if (chosen.length) {
    scopeText.textContent = "Answering only from " + chosen.map(render.titleOf).join(", ");
    scopeClear.hidden = false;
  } else {
    scopeText.textContent = documents.loaded()
      ? (all.length ? "Answering from all " + render.plural(all.length, "document", "documents")
                    : "No documents yet: add some to ask about them")
      : "";
    scopeClear.hidden = true;
  }
  docsCount.textContent = documents.loaded() ? "(" + all.length + ")" : "";
}

const documents = createDocuments({
  list: $("doc-list"),
  empty: $("doc-empty"),
  summary: $("doc-summary"),
  filter: $("doc-filter"),
  fileInput: $("file-input"),
  dropzone: $("dropzone"),
  uploads: $("uploads"),
  status: $("doc-status"),
}, { needKey: needKey, announce: announce, onChange: showScope, onUpload: () => showDocuments(true, false) });

const conversation = createConversation({ log: $("conversation"), empty: $("empty-state") }, {
  needKey: needKey,
  announce: announce,
  scope: () => documents.selected(),
  onUnknownSources: () => documents.refresh(),
  onBusy(busy) {
    askButton.disabled = busy;
    stopButton.hidden = !busy;
    askButton.textContent = busy ? "Answering\u2026" : "Ask";
  },
});

scopeClear.addEventListener("click", () => {
  documents.clearSelection();
  question.focus();
});

// --- composer -----------------------------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = question.value.trim();
  if (!text) {
    announce("Type a question first.");
    question.focus();
    return;
  }
  if (conversation.ask(text)) question.value = "";
  question.focus();
});

question.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    if (askButton.disabled) return;
    if (form.requestSubmit) form.requestSubmit();
    else askButton.click();
  }
});

stopButton.addEventListener("click", () => {
  conversation.stop();
  question.focus();
});

// Escape stops a running answer, wherever the focus is.
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !event.defaultPrevented && conversation.stop()) {
    event.preventDefault();
    if (document.activeElement === stopButton || document.activeElement === document.body) question.focus();
  }
});

$("new-chat").addEventListener("click", () => {
  conversation.reset();
  question.value = "";
  question.focus();
  announce("New conversation.");
});

// The documents panel folds away on narrow screens (and opens to show an upload).
function showDocuments(open, focus) {
  document.body.classList.toggle("docs-open", open);
  docsToggle.setAttribute("aria-expanded", open ? "true" : "false");
  if (open && focus) $("documents-title").focus();
}
docsToggle.addEventListener("click", () => showDocuments(!document.body.classList.contains("docs-open"), true));

// The pure rendering, for tests/test_web.py to check with any citation.
window.ragPage = Object.freeze({
  citationHead: render.citationHead,
  sourceLabel: render.sourceLabel,
  contextParts: render.contextParts,
  copyText: render.copyText,
});

documents.refresh();
