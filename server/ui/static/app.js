// DeskForge dashboard: a client of the JSON API and of the build event
// streams. Views are chosen by the URL fragment: #/ (projects),
// #/projects/ID (a project's builds), #/builds/ID (one build, live).
// Text from the API is only ever set with textContent.
"use strict";

const KEY = "deskforge.apiKey";
const TERMINAL = new Set(["success", "failed", "cancelled"]);
const STATUSES = ["queued", "building", "success", "failed", "cancelled"];
const PAGE = 20;

let apiKey = sessionStorage.getItem(KEY) || "";
let cleanup = []; // closes the current view's streams

// el builds an element: el("a", {href: "#/"}, "text", child…). Attributes
// starting with "on" are listeners; strings become text nodes.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function toast(message) {
  const t = document.getElementById("toast");
  t.textContent = message;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.textContent = ""; }, 6000);
}

// ApiError carries the API's error envelope.
class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error ? body.error.message : "the server answered " + status);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: "Bearer " + apiKey };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await resp.json().catch(() => null);
  if (resp.status === 401) {
    signOut("The API key was refused; sign in again.");
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// eventToken returns a short-lived token for ?token= (EventSource and
// downloads cannot send the Authorization header).
async function eventToken() {
  return (await api("POST", "/events/token")).token;
}

function signOut(message) {
  apiKey = "";
  sessionStorage.removeItem(KEY);
  if (message) toast(message);
  location.hash = "#/";
  route();
}

function view(title, crumbs, ...content) {
  document.title = title + " · DeskForge";
  const nav = document.getElementById("crumbs");
  nav.replaceChildren(...crumbs.map((c) => (c.href ? el("a", { href: c.href }, c.text) : el("span", { "aria-current": "page" }, c.text))));
  document.getElementById("signout").hidden = !apiKey;
  const main = document.getElementById("main");
  main.replaceChildren(el("h1", {}, title), ...content);
}

function fmtTime(s) {
  return s ? new Date(s).toLocaleString() : "—";
}

function fmtSize(n) {
  return n >= 1048576 ? (n / 1048576).toFixed(1) + " MB" : Math.max(1, Math.round(n / 1024)) + " KB";
}

function badge(status) {
  return el("span", { class: "badge s-" + status }, status);
}

function showError(err) {
  view("Something went wrong", [], el("p", { class: "error-text", role: "alert" }, err.message));
}

// --- sign in -------------------------------------------------------------

function showSignIn() {
  const input = el("input", { id: "apikey", type: "password", autocomplete: "off", required: true, spellcheck: "false", "aria-describedby": "apikey-help" });
  const err = el("p", { class: "error-text", role: "alert" });
  const form = el("form", { class: "card signin", onsubmit: async (e) => {
    e.preventDefault();
    apiKey = input.value.trim();
    try {
      await api("GET", "/projects?limit=1");
      sessionStorage.setItem(KEY, apiKey);
      route();
    } catch (ex) {
      apiKey = "";
      err.textContent = ex.message;
      input.focus();
    }
  } },
  el("label", { for: "apikey" }, "API key"),
  input,
  el("p", { id: "apikey-help", class: "help" }, "Paste a DeskForge API key (df_…). It stays in this browser tab (session storage) and is sent only to this server."),
  el("button", { type: "submit" }, "Sign in"),
  err);
  view("Sign in", [], form);
  input.focus();
}

// --- projects ------------------------------------------------------------

async function showProjects() {
  const list = await api("GET", "/projects?limit=200");
  const items = list.projects.map((p) => el("li", {},
    el("a", { href: "#/projects/" + p.id }, p.name),
    el("span", { class: "muted" }, " " + p.platforms.join(", ") + (p.version ? " · v" + p.version : ""))));
  view("Projects", [{ text: "Projects" }],
    items.length ? el("ul", { class: "projects" }, items) : el("p", {}, "No projects yet: create one with POST /projects."));
}

// --- a project's builds --------------------------------------------------

async function showProject(id) {
  const p = await api("GET", "/projects/" + id);
  const state = { status: "", cursors: [""] }; // cursors[i] opens page i

  const tbody = el("tbody");
  const pageInfo = el("span", { class: "muted", "aria-live": "polite" });
  const prev = el("button", { type: "button", class: "secondary", onclick: () => { state.cursors.pop(); load(); } }, "← Newer");
  const next = el("button", { type: "button", class: "secondary", onclick: () => { state.cursors.push(state.next); load(); } }, "Older →");

  async function load() {
    const q = new URLSearchParams({ limit: PAGE });
    if (state.status) q.set("status", state.status);
    const cursor = state.cursors[state.cursors.length - 1];
    if (cursor) q.set("cursor", cursor);
    const list = await api("GET", "/projects/" + id + "/builds?" + q);
    state.next = list.nextCursor;
    tbody.replaceChildren(...list.builds.map((b) => el("tr", {},
      el("td", { "data-label": "Build" }, el("a", { href: "#/builds/" + b.id }, b.id)),
      el("td", { "data-label": "Version" }, b.version),
      el("td", { "data-label": "Target" }, b.platform + "/" + b.arch),
      el("td", { "data-label": "Status" }, badge(b.status)),
      el("td", { "data-label": "Created" }, fmtTime(b.createdAt)))));
    if (!list.builds.length) tbody.append(el("tr", {}, el("td", { colspan: 5 }, "No builds.")));
    pageInfo.textContent = "Page " + state.cursors.length + " · " + list.total + " build(s)";
    prev.disabled = state.cursors.length === 1;
    next.disabled = !state.next;
  }

  const filter = el("select", { id: "status-filter", onchange: () => { state.status = filter.value; state.cursors = [""]; load(); } },
    el("option", { value: "" }, "All statuses"), STATUSES.map((s) => el("option", { value: s }, s)));

  const platform = el("select", { id: "t-platform", name: "platform", required: true }, p.platforms.map((x) => el("option", { value: x }, x)));
  const arch = el("select", { id: "t-arch", name: "arch" }, el("option", { value: "x64" }, "x64"), el("option", { value: "arm64" }, "arm64"));
  const version = el("input", { id: "t-version", name: "version", type: "text", placeholder: p.version || "1.0.0", required: !p.version, inputmode: "text" });
  const trigger = el("form", { class: "card trigger", "aria-labelledby": "trigger-title", onsubmit: async (e) => {
    e.preventDefault();
    const body = { platform: platform.value, arch: arch.value };
    if (version.value.trim()) body.version = version.value.trim();
    try {
      const b = await api("POST", "/projects/" + id + "/builds", body);
      location.hash = "#/builds/" + b.id;
    } catch (ex) {
      toast("Could not trigger the build: " + ex.message);
    }
  } },
  el("h2", { id: "trigger-title" }, "Trigger a build"),
  el("div", { class: "fields" },
    el("div", {}, el("label", { for: "t-platform" }, "Platform"), platform),
    el("div", {}, el("label", { for: "t-arch" }, "Architecture"), arch),
    el("div", {}, el("label", { for: "t-version" }, "Version"), version)),
  el("button", { type: "submit", id: "trigger" }, "Trigger build"));

  view(p.name, [{ text: "Projects", href: "#/" }, { text: p.name }],
    trigger,
    el("section", { "aria-labelledby": "builds-title" },
      el("h2", { id: "builds-title" }, "Builds"),
      el("div", { class: "toolbar" }, el("label", { for: "status-filter" }, "Status"), filter),
      el("table", { class: "builds" },
        el("thead", {}, el("tr", {}, ["Build", "Version", "Target", "Status", "Created"].map((h) => el("th", { scope: "col" }, h)))),
        tbody),
      el("div", { class: "pager" }, prev, pageInfo, next)));
  await load();

  // Refresh the list when a build of the project changes status.
  const es = await openStream("/projects/" + id + "/events", { status: () => load().catch(() => {}) });
  cleanup.push(() => es.close());
}

// --- one build, live ------------------------------------------------------

// openStream opens an event stream with a fresh token. handlers maps event
// names to functions of the parsed data and the event. If the stream is cut
// (or its token expired), it reconnects after `resume()` (the last id).
async function openStream(path, handlers, resume) {
  let es = null;
  let closed = false;
  const handle = {
    close() { closed = true; if (es) es.close(); },
  };
  async function connect() {
    if (closed) return;
    const q = new URLSearchParams({ token: await eventToken() });
    const last = resume ? resume() : "";
    if (last) q.set("lastEventId", last);
    es = new EventSource(path + "?" + q);
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => fn(JSON.parse(ev.data), ev, handle));
    }
    es.onerror = () => {
      if (closed || es.readyState !== EventSource.CLOSED) return; // the browser retries
      setTimeout(() => connect().catch(() => {}), 1000);
    };
  }
  await connect();
  return handle;
}

async function showBuild(id) {
  const b = await api("GET", "/builds/" + id);
  const p = await api("GET", "/projects/" + b.projectId).catch(() => ({ name: b.projectId }));
  let lastSeq = 0;
  let firstError = null;
  let current = b;

  const statusEl = el("span", {}, badge(b.status));
  const meta = el("dl", { class: "meta" });
  const bar = el("progress", { id: "progress-bar", max: 1, value: 0, "aria-labelledby": "progress-label" });
  const progressLabel = el("span", { id: "progress-label" }, "Waiting for a runner");
  const downloadBtn = el("button", { type: "button", id: "download", hidden: true, onclick: download }, "Download installer");
  const cancelBtn = el("button", { type: "button", id: "cancel", class: "secondary", hidden: true, onclick: cancel }, "Cancel build");
  const errorBtn = el("button", { type: "button", id: "jump-error", class: "secondary", disabled: true, onclick: jumpToError }, "Jump to first error");
  const follow = el("input", { type: "checkbox", id: "follow", checked: true });
  const log = el("ol", { id: "log", class: "log", "aria-label": "Build log", tabindex: 0 });

  function renderStatus(x) {
    current = x;
    statusEl.replaceChildren(badge(x.status));
    const rows = [
      ["Version", x.version], ["Target", x.platform + "/" + x.arch], ["Created", fmtTime(x.createdAt)],
      ["Started", fmtTime(x.startedAt)], ["Completed", fmtTime(x.completedAt)],
      ["Duration", x.duration === null ? "—" : x.duration + " s"],
    ];
    if (x.artifactSize) rows.push(["Installer", fmtSize(x.artifactSize)]);
    meta.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    downloadBtn.hidden = x.status !== "success";
    cancelBtn.hidden = TERMINAL.has(x.status);
    renderProgress(x.progress, x.status);
  }

  function renderProgress(pr, status) {
    status = status || current.status;
    if (pr) {
      bar.max = pr.steps;
      bar.value = TERMINAL.has(status) ? pr.steps : Math.max(0, pr.step - 1) + 0.5;
      progressLabel.textContent = "Step " + pr.step + "/" + pr.steps + ": " + pr.name;
    } else {
      bar.removeAttribute("value");
      progressLabel.textContent = status === "queued" ? "Waiting for a runner" : TERMINAL.has(status) ? "No step information" : "Starting";
    }
    if (TERMINAL.has(status)) {
      if (!pr) bar.value = 0;
      progressLabel.textContent = (status === "success" ? "Done" : status === "failed" ? "Failed" : "Cancelled") + (pr ? " · " + pr.steps + " steps" : "");
    }
  }

  function addLog(entry) {
    if (entry.seq <= lastSeq) return;
    lastSeq = entry.seq;
    const li = el("li", { id: "log-" + entry.seq, class: "lvl-" + entry.level, tabindex: -1 },
      el("time", { datetime: entry.timestamp }, new Date(entry.timestamp).toLocaleTimeString()),
      el("span", { class: "lvl" }, entry.level),
      el("span", { class: "msg" }, entry.message));
    log.append(li);
    if (entry.level === "error" && !firstError) {
      firstError = li;
      errorBtn.disabled = false;
    }
    if (follow.checked) li.scrollIntoView({ block: "nearest" });
  }

  function jumpToError() {
    if (!firstError) return;
    follow.checked = false;
    firstError.scrollIntoView({ block: "center" });
    firstError.focus();
  }

  async function download() {
    try {
      const token = await eventToken();
      location.assign("/ui-download/" + id + "?token=" + encodeURIComponent(token));
    } catch (ex) {
      toast("Download failed: " + ex.message);
    }
  }

  async function cancel() {
    try {
      await api("POST", "/builds/" + id + "/cancel"); // the stream shows the outcome
    } catch (ex) {
      toast("Could not cancel: " + ex.message);
    }
  }

  view("Build " + b.version + " · " + b.platform + "/" + b.arch, [{ text: "Projects", href: "#/" }, { text: p.name, href: "#/projects/" + b.projectId }, { text: id }],
    el("section", { class: "card status", "aria-labelledby": "status-title" },
      el("h2", { id: "status-title" }, "Status ", statusEl),
      el("div", { class: "progress" }, bar, progressLabel),
      meta,
      el("div", { class: "actions" }, downloadBtn, cancelBtn)),
    el("section", { "aria-labelledby": "log-title" },
      el("div", { class: "toolbar" },
        el("h2", { id: "log-title" }, "Log"),
        errorBtn,
        el("label", { class: "check" }, follow, " Follow")),
      log));
  renderStatus(b);

  const es = await openStream("/builds/" + id + "/events", {
    log: addLog,
    progress: (pr) => renderProgress(pr),
    status: (x, _ev, handle) => {
      renderStatus(x);
      if (TERMINAL.has(x.status)) handle.close(); // the server ends the stream too
    },
  }, () => (lastSeq ? String(lastSeq) : ""));
  cleanup.push(() => es.close());
}

// --- routing --------------------------------------------------------------

async function route() {
  for (const fn of cleanup) fn();
  cleanup = [];
  const hash = location.hash;
  if (hash.startsWith("#key=")) {
    // The demo prints a link carrying its key in the fragment (never sent to
    // the server); keep it for this tab and drop it from the address bar.
    apiKey = decodeURIComponent(hash.slice(5));
    sessionStorage.setItem(KEY, apiKey);
    history.replaceState(null, "", "#/");
  } else if (hash && !hash.startsWith("#/")) {
    return; // an in-page anchor (skip link)
  }
  if (!apiKey) return showSignIn();
  let m;
  try {
    if ((m = location.hash.match(/^#\/projects\/([\w-]+)$/))) await showProject(m[1]);
    else if ((m = location.hash.match(/^#\/builds\/([\w-]+)$/))) await showBuild(m[1]);
    else await showProjects();
    // Move focus to the new page (screen readers announce it), unless the
    // user already focused something on it while its streams were opening:
    // typing into the trigger form then lost the keys that followed.
    const main = document.getElementById("main");
    if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
  } catch (err) {
    if (apiKey) showError(err);
  }
}

document.getElementById("signout").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
route();
