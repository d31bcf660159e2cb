// messager: plain JavaScript, no build step. Talks to the app's servey actions with a
// Bearer token, and uploads attachments straight to the store with a signed form (the
// app's /data endpoint, or S3 itself when the store is on S3).
"use strict";

const POLL_MS = 5000;
const URL_TTL_MS = 10 * 60 * 1000; // refresh download URLs well before they expire
const MAX_NAME_BYTES = 120;

const state = {
  token: sessionStorage.getItem("messager.token"),
  subject: sessionStorage.getItem("messager.subject"),
  shown: null, // what the message list shows, to re-render only on change
  urls: new Map(), // attachment key -> {url, at}
  polling: null,
  refreshing: null, // the refresh under way, if any
  again: false, // refresh once more when it ends (something changed meanwhile)
  limits: null, // what the attachments store accepts: {max_size, permitted_content_types}
};

const $ = (id) => document.getElementById(id);

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// region: feedback
function showError(message) {
  $("status").hidden = true;
  $("error").textContent = message;
  $("error").hidden = false;
}

function showStatus(message) {
  $("error").hidden = true;
  $("status").textContent = message;
  $("status").hidden = false;
}

function clearFeedback() {
  $("error").hidden = true;
  $("error").textContent = "";
  $("status").hidden = true;
  $("status").textContent = "";
}

// What went wrong, from our JSON errors ({error_code, error_msg}), starlette's
// ({detail}) or plain text, servey's ({error}) or S3's XML (<Code>, <Message>).
async function describeFailure(response) {
  const text = await response.text();
  let detail = text.trim();
  try {
    const body = JSON.parse(text);
    detail = body.error_msg || body.detail || body.error || body.error_code || detail;
  } catch (_) {
    const code = /<Code>([^<]*)<\/Code>/.exec(text);
    if (code) {
      const message = /<Message>([^<]*)<\/Message>/.exec(text);
      detail = code[1] + (message ? ": " + message[1] : "");
    }
  }
  return `${response.status}${detail ? " " + detail : ""}`;
}
// endregion

// region: the app's actions
async function api(method, path, { params, body } = {}) {
  const url = params ? `${path}?${new URLSearchParams(params)}` : path;
  const headers = {};
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    const failure = await describeFailure(response);
    if (response.status === 401 && state.token) {
      signOut();
      throw new HttpError(401, `Please sign in again (${failure})`);
    }
    throw new HttpError(response.status, failure);
  }
  return response.status === 204 ? null : response.json();
}
// endregion

// region: signing in
function setSignedIn(token, subject) {
  state.token = token;
  state.subject = subject;
  if (token) {
    sessionStorage.setItem("messager.token", token);
    sessionStorage.setItem("messager.subject", subject);
  } else {
    sessionStorage.removeItem("messager.token");
    sessionStorage.removeItem("messager.subject");
  }
  $("subject").textContent = subject || "";
  $("who").hidden = !token;
  $("sign-in").hidden = !!token;
  $("app").hidden = !token;
  $("key").placeholder = `default: ${subject || "<you>"}/<random id>/<file name>`;
  clearInterval(state.polling);
  state.polling = null;
  state.shown = null;
  state.urls.clear();
  $("messages").replaceChildren();
  if (token) {
    state.polling = setInterval(() => refresh().catch(() => {}), POLL_MS);
  }
}

function signOut() {
  setSignedIn(null, null);
}

async function signIn(event) {
  event.preventDefault();
  clearFeedback();
  const username = $("username").value.trim();
  const password = $("password").value;
  try {
    const result = await api("POST", "/actions/sign-in", { body: { username, password } });
    $("password").value = "";
    setSignedIn(result.token, result.subject_id);
    loadLimits().catch((error) => showError(`Could not load the attachment limits: ${error.message}`));
    await refresh();
  } catch (error) {
    showError(error.status === 401 ? "Wrong user name or password." : `Sign in failed: ${error.message}`);
  }
}
// endregion

// region: attachments
function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// A file name that is a valid key segment: no "/", "\" or control characters (C0, DEL,
// C1), not "." or "..", and short enough.
function safeName(name) {
  const forbidden = (c) => c === "/" || c === "\\" || c < " " || (c >= "\x7f" && c <= "\x9f");
  let safe = Array.from(name || "file", (c) => (forbidden(c) ? "_" : c)).join("");
  if (safe === "." || safe === "..") safe = "file";
  const encoder = new TextEncoder();
  while (encoder.encode(safe).length > MAX_NAME_BYTES) safe = Array.from(safe).slice(1).join("");
  return safe;
}

// <you>/<random id>/<file name>: the last segment is the name people see.
function defaultKey(file) {
  return `${state.subject}/${randomId()}/${safeName(file.name)}`;
}

function fileName(key) {
  return key.split("/").pop();
}

async function loadLimits() {
  state.limits = await api("GET", "/actions/attachment-limits");
  const { max_size: maxSize, permitted_content_types: types } = state.limits;
  const parts = [];
  if (maxSize != null) parts.push(`up to ${formatSize(maxSize)}`);
  if (types.length) parts.push(`of type ${types.join(", ")}`);
  $("limits").textContent = parts.length ? `Attachments: ${parts.join(", ")}.` : "";
  $("limits").hidden = !parts.length;
}

function typeMatches(contentType, pattern) {
  if (pattern.endsWith("/*")) return contentType.startsWith(pattern.slice(0, -1));
  return contentType === pattern;
}

// Why the store would refuse file, or null: said before a byte is sent. The store checks
// again (a page can be bypassed); this only spares people a long upload that must fail.
function refusal(file) {
  if (!state.limits) return null;
  const { max_size: maxSize, permitted_content_types: types } = state.limits;
  if (maxSize != null && file.size > maxSize) {
    return `${file.name} is ${formatSize(file.size)}: attachments may be at most ${formatSize(maxSize)}.`;
  }
  const contentType = file.type || "application/octet-stream";
  if (types.length && !types.some((pattern) => typeMatches(contentType, pattern))) {
    return `${file.name} is ${contentType}: attachments must be of type ${types.join(", ")}.`;
  }
  return null;
}

// Ask the app for a signed form for key, then post the form's fields (in order) and the
// file straight to form.url: the same two steps for the hosted endpoint and for S3.
async function uploadAttachment(file, key) {
  const contentType = file.type || "application/octet-stream";
  let form;
  try {
    form = await api("GET", "/actions/attachments-upload-form", { params: { key, content_type: contentType } });
  } catch (error) {
    throw new HttpError(error.status, `Upload refused for ${key}: ${error.message}`);
  }
  const data = new FormData();
  for (const field of form.fields) data.append(field.name, field.value);
  data.append(form.file_param, file, file.name);
  let response;
  try {
    response = await fetch(form.url, { method: form.method, body: data });
  } catch (error) {
    throw new Error(`Upload of ${file.name} failed: ${error.message}`);
  }
  if (!response.ok) {
    throw new HttpError(response.status, `Upload refused for ${key}: ${await describeFailure(response)}`);
  }
}

async function downloadUrl(key) {
  const cached = state.urls.get(key);
  if (cached && Date.now() - cached.at < URL_TTL_MS) return cached.url;
  const url = await api("GET", "/actions/attachments-download-url", { params: { key } });
  if (url) state.urls.set(key, { url, at: Date.now() });
  return url;
}

function attachmentPath(key) {
  return "/actions/attachments/" + key.split("/").map(encodeURIComponent).join("/");
}

async function deleteAttachment(key) {
  clearFeedback();
  try {
    const deleted = await api("DELETE", attachmentPath(key));
    if (deleted !== true) throw new Error("the store did not delete it");
    state.urls.delete(key);
    state.shown = null;
    showStatus(`Deleted ${fileName(key)}.`);
    await refresh();
  } catch (error) {
    showError(`Delete refused for ${key}: ${error.message}`);
  }
}
// endregion

// region: messages
function formatSize(size) {
  if (size == null) return "";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

function isInlineImage(contentType) {
  // SVG can carry script: never inline; the store serves it as an attachment anyway.
  return /^image\//.test(contentType || "") && !/svg/.test(contentType);
}

async function fillAttachment(container, message) {
  const key = message.attachment_key;
  const name = fileName(key);
  let url;
  try {
    url = await downloadUrl(key);
  } catch (error) {
    container.textContent = `Attachment ${name}: ${error.message}`;
    container.className = "attachment attachment-missing";
    return;
  }
  if (!url) {
    container.textContent = `Attachment ${name} is gone.`;
    container.className = "attachment attachment-missing";
    return;
  }
  if (isInlineImage(message.attachment_content_type)) {
    const img = document.createElement("img");
    img.className = "attachment-image";
    img.alt = name;
    img.src = url;
    container.append(img);
  }
  const link = document.createElement("a");
  link.className = "attachment-link";
  link.href = url;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  link.textContent = `${name} (${formatSize(message.attachment_size)})`;
  container.append(link);
}

function renderMessage(message) {
  const li = document.createElement("li");
  li.className = "message";
  li.dataset.id = message.id;
  li.dataset.author = message.author;

  const meta = document.createElement("div");
  meta.className = "meta";
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = message.author;
  const time = document.createElement("time");
  time.dateTime = message.created_at;
  time.textContent = new Date(message.created_at).toLocaleString();
  meta.append(author, time);
  li.append(meta);

  if (message.text) {
    const text = document.createElement("p");
    text.className = "text";
    text.textContent = message.text; // never innerHTML: messages are untrusted
    li.append(text);
  }
  if (message.attachment_key) {
    li.dataset.attachmentKey = message.attachment_key;
    const container = document.createElement("div");
    container.className = "attachment";
    li.append(container);
    fillAttachment(container, message);
    // Only on one's own attachments: the store's policy refuses anyone else's anyway.
    if (message.attachment_key.startsWith(`${state.subject}/`)) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "delete-attachment";
      remove.textContent = "Delete attachment";
      remove.addEventListener("click", () => deleteAttachment(message.attachment_key));
      li.append(remove);
    }
  }
  return li;
}

async function refresh() {
  if (!state.token) return;
  if (state.refreshing) {
    state.again = true;
    return state.refreshing;
  }
  state.refreshing = (async () => {
    try {
      do {
        state.again = false;
        const messages = await api("GET", "/actions/latest-messages", { params: { limit: 50 } });
        const shown = JSON.stringify(messages.map((m) => m.id));
        if (shown !== state.shown) {
          state.shown = shown;
          $("messages").replaceChildren(...messages.map(renderMessage));
        }
      } while (state.again && state.token);
    } finally {
      state.refreshing = null;
    }
  })();
  return state.refreshing;
}

async function send(event) {
  event.preventDefault();
  clearFeedback();
  const text = $("text").value;
  const file = $("file").files[0];
  const keyOverride = $("key").value.trim();
  if (!text.trim() && !file) {
    showError("Write something or attach a file.");
    return;
  }
  const refused = file ? refusal(file) : null;
  if (refused) {
    showError(refused);
    return;
  }
  $("send").disabled = true;
  try {
    let key = null;
    if (file) {
      key = keyOverride || defaultKey(file);
      showStatus(`Uploading ${file.name}...`);
      await uploadAttachment(file, key);
    }
    showStatus("Posting...");
    await api("POST", "/actions/post-message", { body: { text, attachment_key: key } });
    $("compose").reset();
    if (key) state.urls.delete(key); // replaced content: ask for a fresh URL
    state.shown = null;
    await refresh();
    showStatus("Sent.");
  } catch (error) {
    showError(error.message);
  } finally {
    $("send").disabled = false;
  }
}
// endregion

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => {
    clearFeedback();
    signOut();
  });
  $("compose").addEventListener("submit", send);
  $("refresh").addEventListener("click", () => {
    clearFeedback();
    state.shown = null;
    refresh().catch((error) => showError(`Refresh failed: ${error.message}`));
  });
  setSignedIn(state.token, state.subject);
  if (state.token) {
    refresh().catch((error) => showError(`Refresh failed: ${error.message}`));
    loadLimits().catch((error) => showError(`Could not load the attachment limits: ${error.message}`));
  }
});
