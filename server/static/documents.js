// The documents panel: upload (file picker or drag and drop, with progress), the
// list of indexed documents with their chunk counts, delete, and the selection of
// the documents answers come from (none ticked: all of them).

import { ApiError, documentPath, getJSON, request, upload } from "./api.js";
import { clear, el, plural, titleOf } from "./render.js";

const FILTER_FROM = 6; // documents listed before the filter box shows

// ui: {list, empty, summary, filter, fileInput, dropzone, uploads, status}
// hooks: {needKey(message, retry), announce(text), onChange(), onUpload()}
export function createDocuments(ui, hooks) {
  let docs = [];
  const selected = new Set();
  const queue = [];
  let draining = false;
  let loaded = false;

  function setStatus(text, isError) {
    ui.status.textContent = text || "";
    ui.status.classList.toggle("error", !!isError);
  }

  function byTitle(a, b) {
    return titleOf(a).localeCompare(titleOf(b), undefined, { sensitivity: "base" }) ||
      String(a.source).localeCompare(String(b.source));
  }

  async function refresh() {
    try {
      const body = await getJSON("/v1/documents");
      docs = (Array.isArray(body.documents) ? body.documents : []).slice().sort(byTitle);
      loaded = true;
      const known = new Set(docs.map((d) => d.source));
      Array.from(selected).forEach((s) => { if (!known.has(s)) selected.delete(s); });
      render();
      if (ui.status.classList.contains("error")) setStatus("");
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) hooks.needKey(e.message, refresh);
      else setStatus("Could not list the documents: " + e.message, true);
    }
    hooks.onChange();
  }

  function render() {
    const focusedSource = document.activeElement && document.activeElement.closest
      ? (document.activeElement.closest(".doc") || {}).dataset : null;
    clear(ui.list);
    docs.forEach((d, i) => ui.list.appendChild(row(d, i)));
    const chunks = docs.reduce((n, d) => n + (Number.isFinite(d.chunks) ? d.chunks : 0), 0);
    ui.summary.textContent = docs.length ? plural(docs.length, "document", "documents") + " \u00b7 " +
      plural(chunks, "chunk", "chunks") : "";
    ui.empty.hidden = docs.length > 0;
    applyFilter();
    if (focusedSource && focusedSource.source) { // keep focus on the same row across a refresh
      const again = findRow(focusedSource.source);
      if (again) again.querySelector(".doc-use").focus({ preventScroll: true });
    }
  }

  function findRow(source) {
    return Array.from(ui.list.children).find((li) => li.dataset.source === source) || null;
  }

  function row(d, i) {
    const title = titleOf(d);
    const li = el("li", "doc");
    li.dataset.source = d.source;
    const box = el("input", "doc-use");
    box.type = "checkbox";
    box.id = "doc-use-" + i;
    box.checked = selected.has(d.source);
    box.addEventListener("change", () => {
      if (box.checked) selected.add(d.source); else selected.delete(d.source);
      hooks.onChange();
    });
    const label = el("label", "doc-label");
    label.htmlFor = box.id;
    label.appendChild(el("span", "doc-title", title));
    const meta = el("span", "doc-meta");
    if (title !== String(d.source)) meta.appendChild(el("span", "doc-source", d.source));
    meta.appendChild(el("span", "doc-chunks", plural(Number(d.chunks) || 0, "chunk", "chunks")));
    label.appendChild(meta);

    const del = el("button", "doc-delete quiet", "Delete");
    del.type = "button";
    del.setAttribute("aria-label", "Delete " + title);
    const confirm = el("div", "doc-confirm");
    confirm.hidden = true;
    confirm.setAttribute("role", "group");
    confirm.setAttribute("aria-label", "Delete " + title + "?");
    confirm.appendChild(el("span", "doc-confirm-text", "Remove it from the index?"));
    const yes = el("button", "doc-confirm-yes danger", "Delete");
    yes.type = "button";
    const no = el("button", "doc-confirm-no quiet", "Cancel");
    no.type = "button";
    confirm.appendChild(yes);
    confirm.appendChild(no);

    const close = () => { confirm.hidden = true; del.hidden = false; del.focus(); };
    del.addEventListener("click", () => { del.hidden = true; confirm.hidden = false; yes.focus(); });
    no.addEventListener("click", close);
    confirm.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); close(); }
    });
    yes.addEventListener("click", () => remove(d, li));

    li.appendChild(box);
    li.appendChild(label);
    li.appendChild(del);
    li.appendChild(confirm);
    return li;
  }

  async function remove(d, li) {
    li.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    setStatus("Deleting " + titleOf(d) + "\u2026");
    try {
      const reply = await (await request("DELETE", documentPath(d.source))).json();
      const next = li.nextElementSibling || li.previousElementSibling;
      const nextSource = next ? next.dataset.source : null;
      selected.delete(d.source);
      const text = "Deleted " + titleOf(d) + " (" + plural(Number(reply.chunks) || 0, "chunk", "chunks") + ").";
      setStatus(text);
      hooks.announce(text);
      await refresh();
      const target = nextSource && findRow(nextSource);
      (target ? target.querySelector(".doc-use") : ui.fileInput).focus();
    } catch (e) {
      li.querySelectorAll("button").forEach((b) => { b.disabled = false; });
      if (e instanceof ApiError && e.status === 401) {
        setStatus("");
        hooks.needKey(e.message, () => remove(d, li));
      } else {
        setStatus("Could not delete " + titleOf(d) + ": " + e.message, true);
        if (e instanceof ApiError && e.status === 404) refresh();
      }
    }
  }

  function applyFilter() {
    const words = ui.filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    Array.from(ui.list.children).forEach((li) => {
      const hay = (li.textContent || "").toLowerCase();
      li.hidden = !words.every((w) => hay.includes(w));
      if (!li.hidden) shown += 1;
    });
    ui.filter.closest(".doc-filter").hidden = docs.length < FILTER_FROM && !ui.filter.value;
    ui.list.dataset.shown = String(shown);
  }

  // --- uploads ------------------------------------------------------------------

  function uploadRow(file) {
    const li = el("li", "upload");
    li.appendChild(el("span", "upload-name", file.name));
    const bar = el("progress", "upload-bar");
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + file.name);
    li.appendChild(bar);
    li.appendChild(el("span", "upload-status", "Waiting\u2026"));
    ui.uploads.appendChild(li);
    return { file: file, li: li, bar: bar, status: li.querySelector(".upload-status") };
  }

  function finish(item, text, ok) {
    item.bar.remove();
    item.status.textContent = text;
    item.li.classList.add(ok ? "ok" : "failed");
    hooks.announce(item.file.name + ": " + text);
  }

  async function send(item) {
    item.status.textContent = "Uploading\u2026";
    const reply = await upload(item.file, (fraction) => {
      if (fraction === null) {
        item.bar.removeAttribute("value"); // indeterminate while the server indexes it
        item.status.textContent = "Indexing\u2026";
      } else {
        item.bar.value = fraction;
        item.status.textContent = "Uploading\u2026 " + Math.round(fraction * 100) + " %";
      }
    });
    const verb = { added: "Added", updated: "Updated", unchanged: "Already indexed" }[reply.status] || "Done";
    let text = verb + ": " + plural(Number(reply.chunks) || 0, "chunk", "chunks");
    if (Array.isArray(reply.warnings) && reply.warnings.length) text += " (" + reply.warnings.join("; ") + ")";
    finish(item, text, true);
  }

  async function drain() {
    if (draining) return;
    draining = true;
    let changed = false;
    try {
      while (queue.length) {
        const item = queue[0];
        try {
          await send(item);
          changed = true;
          queue.shift();
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) { // keep the rest for after the key
            item.status.textContent = "Waiting for the API key\u2026";
            hooks.needKey(e.message, drain);
            break;
          }
          queue.shift();
          const message = String(e.message || e);
          const prefix = item.file.name + ": "; // the row already names the file
          finish(item, message.startsWith(prefix) ? message.slice(prefix.length) : message, false);
        }
        if (changed) await refresh();
        changed = false;
      }
    } finally {
      draining = false;
    }
  }

  function uploadFiles(files) {
    const list = Array.from(files || []);
    if (!list.length) return;
    if (!draining && !queue.length) { // a new batch: forget the finished ones
      Array.from(ui.uploads.querySelectorAll(".upload.ok, .upload.failed")).forEach((li) => li.remove());
    }
    list.forEach((file) => queue.push(uploadRow(file)));
    hooks.onUpload();
    drain();
  }

  ui.fileInput.addEventListener("change", () => {
    uploadFiles(ui.fileInput.files);
    ui.fileInput.value = "";
  });
  ui.filter.addEventListener("input", applyFilter);

  // Files dropped anywhere on the page are uploaded; the drop zone lights up.
  let depth = 0;
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  window.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    document.body.classList.add("dragging");
  });
  window.addEventListener("dragleave", (event) => {
    if (!hasFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) document.body.classList.remove("dragging");
  });
  window.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("drop", (event) => {
    if (!event.dataTransfer || !event.dataTransfer.files || !event.dataTransfer.files.length) return;
    event.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    uploadFiles(event.dataTransfer.files);
  });

  return {
    refresh: refresh,
    uploadFiles: uploadFiles,
    loaded: () => loaded,
    all: () => docs.slice(),
    // the ticked documents, in list order
    selected: () => docs.filter((d) => selected.has(d.source)),
    clearSelection() {
      selected.clear();
      ui.list.querySelectorAll(".doc-use").forEach((box) => { box.checked = false; });
      hooks.onChange();
    },
  };
}
