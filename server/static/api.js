// Talking to the server: the API key, JSON requests, Server-Sent Events, uploads
// with progress. Every request goes to this page's own origin.

const KEY_STORE = "rag-api-key";
let memoryKey = null; // used when sessionStorage is unavailable

export function getKey() {
  try { return window.sessionStorage.getItem(KEY_STORE) || memoryKey; } catch (e) { return memoryKey; }
}

export function setKey(key) {
  memoryKey = key;
  try { window.sessionStorage.setItem(KEY_STORE, key); } catch (e) { /* memory only */ }
}

// An HTTP error with the server's message ({"error": {"type", "message"}}).
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

function authHeaders(extra) {
  const h = Object.assign({}, extra);
  const key = getKey();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

// The message of an error body, or the status line; a 503 says when to retry.
function messageOf(status, statusText, body, retryAfter) {
  let message = body && body.error && body.error.message ? String(body.error.message) : "";
  if (!message) message = "HTTP " + status + (statusText ? " " + statusText : "");
  if (status === 503 && retryAfter) message += " (try again in " + retryAfter + " s)";
  return message;
}

export async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch (e) { /* not JSON */ }
  return new ApiError(response.status,
    messageOf(response.status, response.statusText, body, response.headers.get("Retry-After")));
}

// fetch() on this origin with the key; a failed status becomes an ApiError.
export async function request(method, path, options) {
  const opts = options || {};
  const init = { method: method, headers: authHeaders({ "Accept": opts.accept || "application/json" }),
                 signal: opts.signal };
  if (opts.json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(opts.json);
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function getJSON(path, signal) {
  return (await request("GET", path, { signal: signal })).json();
}

// A document's URL path: each part of its source name percent-encoded.
export function documentPath(source) {
  return "/v1/documents/" + String(source).split("/").map(encodeURIComponent).join("/");
}

// Read a text/event-stream body; onEvent(name, data) for each event.
export async function readEvents(response, onEvent) {
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

// One answer from POST /v1/chat/completions, streamed, answered only from
// `sources` (document ids) when some are given. handlers.onStart() once the server
// has started answering, handlers.onText(piece) for each piece of answer text.
// Resolves with the final answer: {answer, abstained, citations, timings,
// standalone_question, model}. Rejects with an ApiError (also for an error sent
// inside the stream) or an AbortError when `signal` aborts.
export async function chat(messages, sources, signal, handlers) {
  const body = { model: "rag", messages: messages, stream: true };
  if (sources && sources.length) body.sources = sources;
  const response = await request("POST", "/v1/chat/completions",
    { json: body, signal: signal, accept: "text/event-stream, application/json" });
  const type = response.headers.get("Content-Type") || "";
  if (!type.includes("text/event-stream")) { // a plain chat.completion
    const data = await response.json();
    const message = data.choices && data.choices[0] ? data.choices[0].message || {} : {};
    return finalOf(data, String(message.content || ""), message.citations);
  }
  let text = "";
  let final = null;
  let failure = null;
  await readEvents(response, (name, raw) => {
    if (raw === "[DONE]" || final || failure) return;
    let data;
    try { data = JSON.parse(raw); } catch (e) { return; }
    if (data && data.error) {
      failure = new ApiError(0, String(data.error.message || "the answer failed"));
      return;
    }
    const choice = data && data.choices && data.choices[0];
    const delta = (choice && choice.delta) || {};
    if (delta.role && handlers && handlers.onStart) handlers.onStart();
    if (typeof delta.content === "string" && delta.content) {
      text += delta.content;
      if (handlers && handlers.onText) handlers.onText(delta.content, text);
    }
    if ((choice && choice.finish_reason) || Array.isArray(data.citations)) {
      final = finalOf(data, text, delta.citations);
    }
  });
  if (failure) throw failure;
  if (!final) throw new ApiError(0, "the answer stream ended early");
  return final;
}

function finalOf(data, text, citations) {
  const list = Array.isArray(data.citations) ? data.citations : Array.isArray(citations) ? citations : [];
  return {
    answer: text,
    abstained: data.abstained === true,
    citations: list,
    timings: data.timings || null,
    standalone_question: typeof data.standalone_question === "string" ? data.standalone_question : "",
    model: typeof data.model === "string" ? data.model : "",
  };
}

// POST one file to /v1/documents as multipart, with progress: onProgress(fraction)
// while it is sent (null once it is all sent and the server is indexing it).
// Resolves with the server's reply ({source, status, chunks, warnings}).
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/documents");
    const headers = authHeaders({ "Accept": "application/json" });
    Object.keys(headers).forEach((name) => xhr.setRequestHeader(name, headers[name]));
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener("load", () => onProgress(null));
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && body) resolve(body);
      else reject(new ApiError(xhr.status, messageOf(xhr.status, xhr.statusText, body,
                                                    xhr.getResponseHeader("Retry-After"))));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "could not reach the server")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "the upload was cancelled")));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
}
