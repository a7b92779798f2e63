// The llamaport chat page: plain JavaScript over the server's own API.
// Conversations live on the server (/v1/conversations); the page keeps only
// the chosen model and the API key in localStorage, and the open
// conversation's id in the URL's #fragment, so a reload shows it again.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "llamaport.apiKey";
const MODEL = "llamaport.model";
const state = { conversation: null, meta: {}, lastSystem: "", controller: null, keyWaiters: [] };

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function notify(message) {
  $("notice-text").textContent = message;
  $("notice").hidden = false;
}

function clearNotice() {
  $("notice").hidden = true;
}

// Resolves once the user has entered a key in the overlay.
function askForKey(message) {
  $("key-message").textContent = message;
  $("key-overlay").hidden = false;
  $("key-input").focus();
  return new Promise((resolve) => state.keyWaiters.push(resolve));
}

async function errorText(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    return body.error?.message ?? body.error ?? text;
  } catch {
    return text || response.statusText;
  }
}

// fetch with the stored key; a 401 asks for the key and retries.
async function api(path, options = {}) {
  for (;;) {
    const headers = { ...(options.headers ?? {}) };
    const key = localStorage.getItem(KEY);
    if (key) headers.Authorization = `Bearer ${key}`;
    if (options.body) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) {
      const again = key ? "The API key was refused; enter the right one." : "This server needs an API key (LLAMAPORT_API_KEY).";
      await askForKey(again);
      continue;
    }
    if (response.status === 403) throw new ApiError(403, "The server refused this page (its origin or host is not allowed: see LLAMAPORT_ORIGINS).");
    if (!response.ok) throw new ApiError(response.status, await errorText(response));
    return response;
  }
}

const json = async (path, options) => (await api(path, options)).json();
const post = (body) => ({ method: "POST", body: JSON.stringify(body) });

// Calls `onLine` for each JSON line of an NDJSON body.
async function readLines(response, onLine) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value ?? new Uint8Array(), { stream: !done });
    const lines = buffer.split("\n");
    buffer = lines.pop();
    for (const line of lines) if (line.trim()) onLine(JSON.parse(line));
    if (done) return;
  }
}

function formatSize(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  for (; bytes >= 1000 && i < units.length - 1; i++) bytes /= 1000;
  return `${bytes.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function button(text, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

// ---- models -------------------------------------------------------------

async function loadModels() {
  const { models } = await json("/api/tags");
  const select = $("model");
  const wanted = state.meta.model || localStorage.getItem(MODEL) || select.value;
  select.replaceChildren();
  $("models").replaceChildren();
  for (const m of models) {
    const family = m.details?.family ?? "";
    const option = new Option(`${m.name} (${formatSize(m.size)}${family ? ", " + family : ""})`, m.name);
    select.append(option);
    const li = document.createElement("li");
    li.append(`${m.name} · ${formatSize(m.size)} · ${family}`, button("Delete", () => deleteModel(m.name, li), "danger"));
    $("models").append(li);
  }
  if (models.some((m) => m.name === wanted)) select.value = wanted;
  if (!models.length) notify("No models yet: pull one under Models.");
}

async function deleteModel(name, li) {
  const b = li.querySelector("button");
  if (b.textContent !== "Delete?") {
    b.textContent = "Delete?";
    return;
  }
  await json("/api/delete", { method: "DELETE", body: JSON.stringify({ model: name }) }).catch(() => null);
  await loadModels();
}

async function pullModel(event) {
  event.preventDefault();
  const name = $("pull-name").value.trim();
  const bar = $("pull-progress");
  const status = $("pull-status");
  bar.hidden = false;
  bar.value = 0;
  status.textContent = "starting…";
  try {
    const insecure = $("pull-insecure").checked;
    const response = await api("/api/pull", post({ model: name, stream: true, insecure }));
    let ok = false;
    await readLines(response, (line) => {
      if (line.error) throw new ApiError(500, line.error);
      status.textContent = line.status;
      if (line.total) bar.value = (line.completed ?? 0) / line.total;
      ok = line.status === "success";
    });
    if (!ok) throw new ApiError(0, "the pull stopped before it finished");
    bar.value = 1;
    status.textContent = `${name}: success`;
    await loadModels();
  } catch (error) {
    status.textContent = `pull failed: ${error.message}`;
  }
}

// ---- conversations ----------------------------------------------------------

async function loadConversations() {
  const { data } = await json("/v1/conversations");
  const list = $("conversations");
  list.replaceChildren();
  for (const c of data) {
    const li = document.createElement("li");
    li.dataset.id = c.id;
    if (c.id === state.conversation) li.className = "current";
    const open = button(c.title || "(untitled)", () => openConversation(c.id), "title");
    const rename = button("\u270E", () => startRename(li, c), "rename");
    const remove = button("\u00D7", (e) => deleteConversation(c.id, e.target), "danger");
    rename.title = rename.ariaLabel = "Rename";
    remove.title = remove.ariaLabel = "Delete";
    li.append(open, rename, remove);
    list.append(li);
  }
}

function startRename(li, conversation) {
  const input = document.createElement("input");
  input.className = "rename-input";
  input.value = conversation.title;
  li.querySelector(".title").replaceWith(input);
  input.focus();
  input.addEventListener("keydown", async (event) => {
    if (event.key === "Escape") return loadConversations();
    if (event.key !== "Enter") return;
    const metadata = { ...conversation.metadata, title: input.value.trim().slice(0, 512) };
    await guarded(json(`/v1/conversations/${conversation.id}`, post({ metadata })));
    if (conversation.id === state.conversation) state.meta = metadata;
    await loadConversations();
  });
}

async function deleteConversation(id, b) {
  if (b.textContent !== "Delete?") {
    b.textContent = "Delete?";
    return;
  }
  await guarded(json(`/v1/conversations/${id}`, { method: "DELETE" }));
  if (id === state.conversation) newConversation();
  await loadConversations();
}

function newConversation() {
  stop();
  state.conversation = null;
  state.meta = {};
  state.lastSystem = "";
  $("system").value = "";
  $("temperature").value = "";
  history.replaceState(null, "", location.pathname);
  $("messages").replaceChildren();
  loadConversations().catch(report);
}

async function allItems(id) {
  const items = [];
  let after = "";
  for (let page = 0; page < 100; page++) {
    const list = await json(`/v1/conversations/${id}/items?order=asc&limit=100${after ? "&after=" + after : ""}`);
    items.push(...list.data);
    if (!list.has_more) break;
    after = list.last_id;
  }
  return items;
}

const itemText = (item) => (item.content ?? item.summary ?? []).map((p) => p.text ?? "").join("");

async function openConversation(id) {
  stop();
  const [conversation, items] = await Promise.all([json(`/v1/conversations/${id}`), allItems(id)]);
  state.conversation = id;
  state.meta = conversation.metadata ?? {};
  state.lastSystem = "";
  history.replaceState(null, "", `#${id}`);
  document.body.classList.remove("show-sidebar");
  $("system").value = state.meta.system ?? "";
  $("temperature").value = state.meta.temperature ?? "";
  if (state.meta.model && [...$("model").options].some((o) => o.value === state.meta.model)) $("model").value = state.meta.model;
  $("messages").replaceChildren();
  let thinking = "";
  for (const item of items) {
    if (item.type === "reasoning") thinking += itemText(item);
    if (item.type !== "message") continue;
    if (item.role === "system") {
      state.lastSystem = itemText(item);
      continue;
    }
    const bubble = addMessage(item.role);
    if (thinking && item.role === "assistant") setThinking(bubble, thinking);
    thinking = "";
    renderMarkdown(bubble.body, itemText(item));
    if (item.status === "incomplete") bubble.root.classList.add("incomplete");
  }
  await loadConversations();
}

// Saves the settings into the open conversation's metadata (strings only).
async function saveSettings() {
  const meta = { ...state.meta, model: $("model").value, system: $("system").value };
  const temperature = $("temperature").value;
  if (temperature === "") delete meta.temperature;
  else meta.temperature = temperature;
  state.meta = meta;
  if (state.conversation) await guarded(json(`/v1/conversations/${state.conversation}`, post({ metadata: meta })));
}

// ---- chat -----------------------------------------------------------------

function addMessage(role) {
  const root = document.createElement("article");
  root.className = `message ${role}`;
  const body = document.createElement("div");
  body.className = "body";
  root.append(body);
  $("messages").append(root);
  root.scrollIntoView({ block: "end" });
  return { root, body };
}

function setThinking(bubble, text) {
  let details = bubble.root.querySelector("details.thinking");
  if (!details) {
    details = document.createElement("details");
    details.className = "thinking";
    const summary = document.createElement("summary");
    summary.textContent = "Thinking";
    details.append(summary, document.createElement("div"));
    bubble.root.prepend(details);
  }
  details.lastChild.textContent = text;
}

function busy(on) {
  $("send").hidden = on;
  $("stop").hidden = !on;
}

function stop() {
  state.controller?.abort();
}

// Starts a stored conversation for the first turn; true when it made one.
async function ensureConversation() {
  if (state.conversation) return false;
  await saveSettings();
  const conversation = await json("/v1/conversations", post({ metadata: state.meta }));
  state.conversation = conversation.id;
  history.replaceState(null, "", `#${conversation.id}`);
  return true;
}

// A first turn the server refused leaves nothing stored: drop its empty conversation.
async function discardConversation() {
  const id = state.conversation;
  state.conversation = null;
  history.replaceState(null, "", location.pathname);
  await json(`/v1/conversations/${id}`, { method: "DELETE" });
}

async function send(event) {
  event?.preventDefault();
  const text = $("prompt").value;
  if (!text.trim() || state.controller) return;
  const model = $("model").value;
  if (!model) return notify("Pick a model first (or pull one under Models).");
  clearNotice();
  state.controller = new AbortController();
  busy(true);
  let created = false;
  let answered = false;
  let asked = null;
  let failed = false;
  try {
    created = await ensureConversation();
    const messages = [];
    const system = $("system").value;
    if (system !== state.lastSystem) messages.push({ role: "system", content: system });
    messages.push({ role: "user", content: text });
    const options = $("temperature").value === "" ? {} : { temperature: Number($("temperature").value) };
    asked = addMessage("user");
    renderMarkdown(asked.body, text);
    $("prompt").value = "";
    const body = { model, conversation: state.conversation, messages, stream: true, options };
    const response = await api("/api/chat", { ...post(body), signal: state.controller.signal });
    answered = true;
    state.lastSystem = system;
    await streamReply(response);
  } catch (error) {
    failed = error.name !== "AbortError";
    if (failed) report(error);
    if (!answered && error instanceof ApiError) {
      // The server refused the turn: nothing was stored, so the text goes back to the box.
      asked?.root.remove();
      $("prompt").value = text;
      if (created) await discardConversation().catch(report);
    }
  } finally {
    state.controller = null;
    busy(false);
    // After a failed turn its own message stays up; a refresh failing too says less.
    loadConversations().catch(failed ? () => {} : report);
  }
}

async function streamReply(response) {
  const bubble = addMessage("assistant");
  bubble.root.classList.add("streaming");
  let content = "";
  let thinking = "";
  let done = false;
  try {
    await readLines(response, (line) => {
      if (line.error) throw new ApiError(500, `The server stopped the reply: ${line.error}`);
      thinking += line.message?.thinking ?? "";
      content += line.message?.content ?? "";
      if (thinking) setThinking(bubble, thinking);
      renderMarkdown(bubble.body, content);
      bubble.root.scrollIntoView({ block: "end" });
      done = line.done === true;
    });
    if (!done) throw new ApiError(0, "The stream ended early: the reply is incomplete.");
  } catch (error) {
    bubble.root.classList.add("incomplete");
    if (error.name === "AbortError") bubble.root.classList.add("stopped");
    else if (error instanceof ApiError) throw error;
    else throw new ApiError(0, `The connection dropped: the reply is incomplete (${error.message}).`, { cause: error });
  } finally {
    bubble.root.classList.remove("streaming");
  }
}

function report(error) {
  if (error.name === "AbortError") return;
  if (error instanceof TypeError) notify(`Cannot reach the server: ${error.message}`);
  else notify(error.message);
}

const guarded = (promise) => promise.catch((error) => report(error));

// ---- wiring -----------------------------------------------------------------

function wire() {
  $("composer").addEventListener("submit", send);
  $("stop").addEventListener("click", stop);
  $("new-chat").addEventListener("click", newConversation);
  $("notice-close").addEventListener("click", clearNotice);
  $("pull-form").addEventListener("submit", pullModel);
  $("toggle-sidebar").addEventListener("click", () => document.body.classList.toggle("show-sidebar"));
  $("model").addEventListener("change", () => {
    localStorage.setItem(MODEL, $("model").value);
    if (state.conversation) saveSettings();
  });
  $("system").addEventListener("change", saveSettings);
  $("temperature").addEventListener("change", saveSettings);
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) send(event);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") stop();
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(KEY, $("key-input").value);
    $("key-input").value = "";
    $("key-overlay").hidden = true;
    for (const resolve of state.keyWaiters.splice(0)) resolve();
  });
}

// Opens the conversation the URL names (at start, or when a link changes the #id).
async function openFromHash() {
  const id = location.hash.slice(1);
  if (!id) return loadConversations();
  if (id === state.conversation) return;
  await openConversation(id).catch((error) => {
    report(error);
    newConversation();
  });
}

async function start() {
  wire();
  window.addEventListener("hashchange", () => openFromHash().catch(report));
  await loadModels();
  await openFromHash();
  document.body.dataset.ready = "true";
}

start().catch(report);
