"use strict";
// The access token lives in this variable only. The refresh token is, in browser mode, an
// HttpOnly cookie this script cannot read; otherwise it is kept here too.
let accessToken = null;
let refreshToken = null;
let me = null; // the profile of who is logged in, from GET /auth/me
let mfaToken = null; // between a login's password and its code: the mfa_required answer's

const ADMIN_PAGE_SIZE = 5;
const NOTICE_SECONDS = 8;

const $ = (id) => document.getElementById(id);

function element(tag, { className, text, title } = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (title) node.title = title;
  node.append(...children);
  return node;
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function formatTime(seconds, options = { dateStyle: "short", timeStyle: "short" }) {
  return new Date(seconds * 1000).toLocaleString([], options);
}

// The API log ---------------------------------------------------------------------------

function logCall(method, path, status, body) {
  const line = document.createElement("div");
  const head = document.createElement("span");
  head.className = "status-" + String(status)[0] + (status === 429 ? " limited" : "");
  head.textContent = `${new Date().toLocaleTimeString()}  ${method} ${path} → ${status}`;
  line.append(head);
  if (body !== null && body !== "") {
    line.append("\n" + (typeof body === "string" ? body : JSON.stringify(body, null, 2)));
  }
  $("log").prepend(line);
}

// `logged`: what the log shows of a successful answer in its place, for one that holds a
// secret shown on the page this once (a seed, recovery codes).
async function call(method, path, {
  json, auth = false, retry = true, quiet = false, headers: extra = {}, logged,
} = {}) {
  const headers = { ...extra };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  if (auth && accessToken) headers["Authorization"] = "Bearer " + accessToken;
  const response = await fetch(path, {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    credentials: "same-origin",
  });
  const text = await response.text();
  let body = text;
  try { body = text ? JSON.parse(text) : null; } catch (error) { /* not JSON */ }
  if (!quiet) logCall(method, path, response.status, response.ok && logged ? logged : body);
  // An expired access token: refresh once and try again.
  if (response.status === 401 && auth && retry && await refreshTokens()) {
    return call(method, path, { json, auth, retry: false, headers: extra, logged });
  }
  return { status: response.status, body, headers: response.headers };
}

// What a problem+json answer says, in one line: its title and detail, and how long to wait.
function problemText(body, headers) {
  let text = String(body);
  if (body && typeof body === "object" && body.title) {
    text = body.detail ? `${body.title}: ${body.detail}` : body.title;
  }
  const retry = headers && headers.get("Retry-After");
  return retry ? `${text} (try again in ${retry} s)` : text;
}

// Confirmations -------------------------------------------------------------------------

// A visible "done" (or "failed") in the corner, for what changes who is logged in.
let noticeTimer = null;
function notify(text, kind = "ok") {
  const notice = $("notice");
  $("notice-text").textContent = text;
  notice.className = kind === "error" ? "notice error" : "notice";
  notice.setAttribute("role", kind === "error" ? "alert" : "status");
  notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { notice.hidden = true; }, NOTICE_SECONDS * 1000);
}

$("notice-close").addEventListener("click", () => { $("notice").hidden = true; });

// Asks before something that cannot be undone from here; resolves to true for "go ahead".
function confirmAction(question, confirmLabel) {
  const dialog = $("confirm");
  $("confirm-text").textContent = question;
  $("confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    $("confirm-cancel").focus();
  });
}

$("confirm-ok").addEventListener("click", () => $("confirm").close("ok"));
$("confirm-cancel").addEventListener("click", () => $("confirm").close("cancel"));

// Errors beside the field they concern --------------------------------------------------

// The field a problem is about, by its code, or by the member a validation error names.
const FIELD_OF_CODE = {
  weak_password: "password",
  password_breached: "password",
  invalid_username: "username",
  username_taken: "username",
  invalid_email: "email",
  email_taken: "email",
  wrong_password: "current_password",
  wrong_totp_code: "code",
};

function problemField(body, form) {
  if (!body || typeof body !== "object") return null;
  const byCode = FIELD_OF_CODE[body.code];
  if (byCode) return form.elements.namedItem(byCode) ? byCode : null;
  const detail = body.detail || "";
  // msgspec names the member: "… - at `$.email`", "Object missing required field `email`";
  // the package's own checks begin with it: "full_name must be at most 200 characters".
  const match = /`\$\.(\w+)`|field `(\w+)`|^(\w+) must/.exec(detail);
  const name = match && (match[1] || match[2] || match[3]);
  return name && form.elements.namedItem(name) ? name : null;
}

// The field's error box: of what describes it, the one whose id says so (a field may be
// described by its rules too).
function fieldErrorBox(input) {
  const ids = input.getAttribute("aria-describedby").split(" ");
  return $(ids.find((id) => id.endsWith("-error")));
}

function clearFieldError(input) {
  input.removeAttribute("aria-invalid");
  const box = fieldErrorBox(input);
  box.replaceChildren();
  box.hidden = true;
}

function clearFormErrors(form, resultId) {
  for (const input of form.querySelectorAll("input")) clearFieldError(input);
  showResult(resultId, "");
}

// Shows `messages` under the field: one as a sentence, several as a list.
function showFieldError(form, name, messages) {
  const input = form.elements.namedItem(name);
  input.setAttribute("aria-invalid", "true");
  const box = fieldErrorBox(input);
  if (messages.length === 1) {
    box.textContent = messages[0];
  } else {
    box.replaceChildren(element("ul", {}, ...messages.map((text) => element("li", { text }))));
  }
  box.hidden = false;
}

function showResult(id, text, kind = "ok") {
  const result = $(id);
  result.textContent = text;
  result.className = "result " + (text ? kind : "");
}

// Required fields left empty are named before anything is sent.
function missingFields(form) {
  let missing = false;
  for (const input of form.querySelectorAll("input[required]")) {
    if (!input.value.trim()) {
      showFieldError(form, input.name, ["Fill this in"]);
      missing = true;
    }
  }
  return missing;
}

// Shows a refusal: beside its field when it concerns one (every rule a weak password
// breaks, from the problem's `errors`), the title under the form.
function showProblem(form, resultId, result) {
  const body = result.body;
  const field = problemField(body, form);
  if (field) {
    const messages = Array.isArray(body.errors) && body.errors.length
      ? body.errors
      : [body.detail || body.title];
    showFieldError(form, field, messages);
    // The title under the form too, unless the field says just that already.
    showResult(resultId, messages.includes(body.title) ? "" : body.title, "error");
  } else {
    showResult(resultId, problemText(body, result.headers), "error");
  }
}

for (const form of document.querySelectorAll("form")) {
  form.addEventListener("input", (event) => {
    if (event.target.matches("input[aria-invalid]")) clearFieldError(event.target);
  });
}

// Tokens and the signed-in view ---------------------------------------------------------

function keepTokens(body) {
  accessToken = body.access_token;
  refreshToken = body.refresh_token || null;
}

async function refreshTokens(quiet = false) {
  const result = await call("POST", "/auth/refresh",
                            { json: refreshToken ? { refresh_token: refreshToken } : {}, quiet });
  if (result.status === 200) {
    keepTokens(result.body);
    return true;
  }
  accessToken = refreshToken = null;
  return false;
}

function showSignedIn(signedIn) {
  $("signed-in").hidden = !signedIn;
  $("signed-out").hidden = signedIn;
}

function signedOut() {
  accessToken = refreshToken = null;
  me = null;
  forgetEnrolment();
  hideRecoveryCodes();
  for (const form of $("totp-card").querySelectorAll("form")) form.reset();
  showResult("totp-result", "");
  $("admin").hidden = true;
  $("admin-users").replaceChildren();
  $("sessions").replaceChildren();
  showResult("api-result", "");
  showSignedIn(false);
}

async function loadProfile() {
  const result = await call("GET", "/auth/me", { auth: true });
  if (result.status !== 200) { signedOut(); return false; }
  me = result.body;
  $("profile-username").textContent = me.username;
  $("profile-email").textContent = me.email;
  $("profile-verified").textContent = me.email_verified ? "yes" : "not yet: see the outbox";
  $("profile-full-name").textContent = me.full_name || "—";
  $("profile-admin").textContent = me.is_admin ? "yes" : "no";
  $("profile-id").textContent = me.id;
  $("admin-hint").hidden = me.is_admin;
  $("admin").hidden = !me.is_admin;
  showTotp();
  showSignedIn(true);
  await loadSessions();
  if (me.is_admin) {
    adminPages.splice(1);
    await loadAdminUsers(0);
  }
  return true;
}

// Sessions ------------------------------------------------------------------------------

async function loadSessions() {
  // The demo's /api/sessions: /auth/sessions, with `device` read from each User-Agent.
  const result = await call("GET", "/api/sessions", { auth: true });
  const rows = $("sessions");
  rows.replaceChildren();
  if (result.status !== 200) return;
  for (const session of result.body.sessions) {
    const row = element("tr");
    row.dataset.sessionId = session.id;
    const name = element("span", {
      className: "device",
      text: session.device,
      title: session.device_info || "No User-Agent was sent",
    });
    const detail = element("span", { className: "sub" });
    if (session.current) {
      detail.append(element("span", { className: "tag", text: "this session" }), " ");
    }
    detail.append("last used " + formatTime(session.last_used_at, { timeStyle: "short" }),
                  element("span", { className: "narrow-only", text: " · " + session.ip_address }));
    const device = element("td", {}, name, detail);
    const address = element("td", {
      className: "optional",
      text: session.ip_address || "—",
      title: session.ip_address,
    });
    const started = element("td", {
      className: "optional",
      text: formatTime(session.created_at),
      title: `Started ${formatTime(session.created_at, { dateStyle: "full", timeStyle: "long" })}`
        + `; ends ${formatTime(session.expires_at, { dateStyle: "full", timeStyle: "long" })}`
        + " unless refreshed",
    });
    const revoke = element("button", { className: "secondary small revoke", text: "Revoke" });
    revoke.type = "button";
    revoke.addEventListener("click", () => revokeSession(session));
    row.append(device, address, started, element("td", { className: "action" }, revoke));
    rows.append(row);
  }
}

async function revokeSession(session) {
  const path = "/auth/sessions/" + encodeURIComponent(session.id);
  const result = await call("DELETE", path, { auth: true });
  if (result.status !== 204) {
    notify("The session was not ended: " + problemText(result.body, result.headers), "error");
    await loadSessions();
  } else if (session.current) {
    signedOut();
    notify("This session was revoked: you are logged out.");
  } else {
    notify(`Session revoked: ${session.device}, from ${session.ip_address || "an unknown address"}.`);
    await loadSessions();
  }
}

// Administration ------------------------------------------------------------------------

// adminPages[i] is the cursor (`after`) that page i starts after: null for the first.
const adminPages = [null];
let adminPage = 0;
// The ETag of each account as its row shows it, sent in If-Match with a change of it: a
// change another administrator made since is then refused (412), not undone.
const adminVersions = new Map();

async function loadAdminUsers(pageIndex = adminPage) {
  const query = new URLSearchParams({ limit: String(ADMIN_PAGE_SIZE) });
  if (adminPages[pageIndex]) query.set("after", adminPages[pageIndex]);
  const result = await call("GET", "/auth/admin/users?" + query, { auth: true });
  if (result.status !== 200) {
    notify("The users could not be listed: " + problemText(result.body, result.headers), "error");
    return;
  }
  adminPage = pageIndex;
  adminPages.splice(pageIndex + 1, adminPages.length, result.body.next_cursor);
  // Each account read on its own, for its ETag: the row shows that version. One after the
  // other, so that an expired access token is refreshed once, not by each at once.
  const shown = [];
  for (const listed of result.body.users) {
    const read = await call("GET", "/auth/admin/users/" + encodeURIComponent(listed.id),
                            { auth: true });
    if (read.status === 404) continue; // deleted since the page was listed
    const found = read.status === 200;
    shown.push(found ? read.body : listed);
    if (found) adminVersions.set(listed.id, read.headers.get("ETag"));
    else adminVersions.delete(listed.id);
  }
  const rows = $("admin-users");
  rows.replaceChildren();
  for (const user of shown) rows.append(adminRow(user));
  $("admin-page").textContent = `Page ${pageIndex + 1}`;
  $("admin-previous").disabled = pageIndex === 0;
  $("admin-next").disabled = !result.body.next_cursor;
}

function adminRow(user) {
  const itself = me && user.id === me.id;
  const row = element("tr", { className: user.is_active ? "" : "inactive" });
  row.dataset.userId = user.id;
  row.dataset.username = user.username;
  const name = element("td", { title: user.full_name || user.username },
                       element("span", { text: user.username }));
  if (user.is_admin) name.append(" ", element("span", { className: "tag admin", text: "admin" }));
  if (itself) name.append(" ", element("span", { className: "tag", text: "you" }));
  const statusTag = () => element("span", {
    className: "tag status " + (user.is_active ? "active" : "disabled"),
    text: user.is_active ? "active" : "disabled",
  });
  // A narrow card has no status column: a disabled account says so by its name.
  if (!user.is_active) name.append(element("span", { className: "narrow-only" }, " ", statusTag()));
  const toggle = element("button", {
    className: user.is_active ? "secondary danger small toggle" : "secondary small toggle",
    text: user.is_active ? "Disable" : "Enable",
  });
  const endSessions = element("button", {
    className: "secondary small end-sessions",
    text: "End sessions",
  });
  for (const button of [toggle, endSessions]) {
    button.type = "button";
    if (itself) {
      button.disabled = true;
      button.title = "Your own account: use Log out / Log out everywhere";
    }
  }
  const reset = element("button", { className: "secondary small reset", text: "Mail a reset link" });
  reset.type = "button";
  toggle.addEventListener("click", () => setActive(user, !user.is_active));
  endSessions.addEventListener("click", () => endUserSessions(user));
  reset.addEventListener("click", () => mailResetLink(user));
  row.append(
    name,
    element("td", { className: "optional", text: user.email, title: user.email }),
    element("td", { className: "optional" }, statusTag()),
    element("td", { className: "optional", text: formatTime(user.created_at) }),
    element("td", { className: "action" }, toggle, endSessions, reset),
  );
  return row;
}

async function setActive(user, active) {
  if (!active && !await confirmAction(
    `Disable ${user.username}? Every session of theirs ends now, and they cannot log in `
    + "until the account is enabled again.", "Disable")) return;
  const version = adminVersions.get(user.id);
  if (!version) {
    notify(`${user.username} could not be read: reload the list and try again.`, "error");
    return;
  }
  const result = await call("PATCH", "/auth/admin/users/" + encodeURIComponent(user.id),
                            { json: { is_active: active }, auth: true,
                              headers: { "If-Match": version } });
  if (result.status === 200) {
    notify(active
      ? `${user.username} is enabled again.`
      : `${user.username} is disabled and logged out everywhere.`);
  } else if (result.status === 412) {
    // The row stays as it was loaded, for the administrator to compare after a reload.
    notify(`${user.username} was not changed: the account changed since you loaded it. `
           + "Reload the list, and decide again on what it shows now.", "error");
    return;
  } else {
    notify(`${user.username} was not changed: ` + problemText(result.body, result.headers), "error");
  }
  await loadAdminUsers();
}

async function endUserSessions(user) {
  if (!await confirmAction(
    `End every session of ${user.username}? They will have to log in again.`,
    "End sessions")) return;
  const path = "/auth/admin/users/" + encodeURIComponent(user.id) + "/revoke";
  const result = await call("POST", path, { auth: true });
  if (result.status === 200) {
    notify(`Revoked ${plural(result.body.sessions_ended, "session")} of ${user.username}.`);
  } else {
    notify(`The sessions of ${user.username} were not ended: `
           + problemText(result.body, result.headers), "error");
  }
}

async function mailResetLink(user) {
  if (!await confirmAction(
    `Mail ${user.username} a link to choose a new password? Their password works until `
    + "they use it, and you never learn the new one.", "Mail the link")) return;
  const path = "/auth/admin/users/" + encodeURIComponent(user.id) + "/password-reset";
  const result = await call("POST", path, { json: {}, auth: true });
  if (result.status === 202) {
    notify(`A reset link is on its way to ${user.username}: in this demo, to the outbox.`);
    await loadOutbox();
  } else {
    notify(`No link was mailed to ${user.username}: `
           + problemText(result.body, result.headers), "error");
  }
}

$("admin-reload").addEventListener("click", () => loadAdminUsers());
$("admin-previous").addEventListener("click", () => loadAdminUsers(adminPage - 1));
$("admin-next").addEventListener("click", () => loadAdminUsers(adminPage + 1));

// Forms and buttons ---------------------------------------------------------------------

$("register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form, "register-result");
  if (missingFields(form)) return;
  const data = new FormData(form);
  const json = {
    username: data.get("username"),
    email: data.get("email"),
    password: data.get("password"),
  };
  if (data.get("full_name")) json.full_name = data.get("full_name");
  const result = await call("POST", "/auth/register", { json });
  if (result.status !== 201) { showProblem(form, "register-result", result); return; }
  showResult("register-result", `Registered ${result.body.username}. Log in now.`);
  form.reset();
  $("login-username").value = result.body.username;
  $("login-password").focus();
});

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form, "login-result");
  if (missingFields(form)) return;
  const data = new FormData(form);
  // The OAuth2 password grant, exactly as Swagger UI and OAuth2 clients send it.
  const result = await tokenRequest("/auth/login", {
    grant_type: "password",
    username: data.get("username"),
    password: data.get("password"),
  });
  if (result.status === 403 && result.body && result.body.code === "mfa_required") {
    $("login-password").value = "";
    askForCode(result.body.mfa_token);
    return;
  }
  if (result.status !== 200) {
    showProblem(form, "login-result", result);
    if (result.status === 401) $("login-password").setAttribute("aria-invalid", "true");
    return;
  }
  $("login-password").value = "";
  await loggedIn(result.body);
});

// A form post to a token endpoint, logged without the tokens it answers, nor the
// `mfa_token` of a login's first step.
async function tokenRequest(path, fields) {
  const body = new URLSearchParams(fields);
  const response = await fetch(path, { method: "POST", body, credentials: "same-origin" });
  let answer = null;
  try { answer = await response.json(); } catch (error) { /* not JSON */ }
  let logged = response.ok ? "(tokens)" : answer;
  if (answer && answer.mfa_token) logged = { ...answer, mfa_token: "(kept by the page)" };
  logCall("POST", path, response.status, logged);
  return { status: response.status, body: answer, headers: response.headers };
}

async function loggedIn(tokens) {
  keepTokens(tokens);
  if (await loadProfile()) notify(`Logged in as ${me.username}.`);
}

// The second step of a login whose account has its second factor on: the code, in place
// of the password form, posted with the first step's `mfa_token` (valid for 5 minutes).
function askForCode(token) {
  mfaToken = token;
  $("login-form").hidden = true;
  $("totp-login-form").hidden = false;
  useRecoveryCode(false);
  $("totp-login-code").focus();
}

function leaveCode() {
  mfaToken = null;
  const form = $("totp-login-form");
  clearFormErrors(form, "login-result");
  form.reset();
  form.hidden = true;
  $("login-form").hidden = false;
}

// A recovery code has letters: the field then asks for a keyboard that has them.
function useRecoveryCode(recovery) {
  const field = $("totp-login-code");
  field.inputMode = recovery ? "text" : "numeric";
  field.autocomplete = recovery ? "off" : "one-time-code";
  $("totp-login-recovery").textContent = recovery ? "Type the app's code" : "Type a recovery code";
}

$("totp-login-recovery").addEventListener("click", () => {
  useRecoveryCode($("totp-login-code").inputMode === "numeric");
  $("totp-login-code").focus();
});

$("totp-login-cancel").addEventListener("click", () => {
  leaveCode();
  $("login-password").focus();
});

$("totp-login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form, "login-result");
  if (missingFields(form)) return;
  const result = await tokenRequest("/auth/login/totp", {
    mfa_token: mfaToken,
    code: new FormData(form).get("code").trim(),
  });
  if (result.status === 401) {
    // Expired, or the account changed meanwhile: the login starts again.
    leaveCode();
    showResult("login-result", problemText(result.body, result.headers) + ". Log in again.",
               "error");
    $("login-password").focus();
    return;
  }
  if (result.status !== 200) { showProblem(form, "login-result", result); return; }
  leaveCode();
  await loggedIn(result.body);
});

$("hammer").addEventListener("click", async () => {
  const list = $("hammer-results");
  list.replaceChildren();
  const username = $("login-username").value || "someone";
  for (let attempt = 1; attempt <= 12; attempt++) {
    const response = await fetch("/auth/login", {
      method: "POST",
      body: new URLSearchParams({ username, password: "wrong-password-" + attempt }),
    });
    const item = document.createElement("li");
    item.className = "status-4" + (response.status === 429 ? " limited" : "");
    const retry = response.headers.get("Retry-After");
    item.textContent = response.status + (retry ? ` (Retry-After: ${retry} s)` : "");
    item.dataset.status = String(response.status);
    list.append(item);
  }
  logCall("POST", "/auth/login", "×12", "see the rate-limiting panel");
});

$("call-api").addEventListener("click", async () => {
  const result = await call("GET", "/api/hello", { auth: true });
  if (result.status === 200) {
    showResult("api-result", result.body.message);
  } else {
    showResult("api-result", problemText(result.body, result.headers), "error");
  }
});

$("refresh").addEventListener("click", async () => {
  if (await refreshTokens()) {
    notify("Tokens refreshed: a new access token, and a new refresh token in the cookie.");
    await loadSessions();
  } else {
    signedOut();
    notify("The session has ended: log in again.", "error");
  }
});

$("logout").addEventListener("click", async () => {
  const result = await call("POST", "/auth/logout",
                            { json: refreshToken ? { refresh_token: refreshToken } : undefined,
                              auth: true });
  const name = me ? me.username : "";
  signedOut();
  if (result.status === 204) {
    notify(name ? `Logged out ${name}.` : "Logged out.");
  } else {
    notify("Logged out here; the server said: " + problemText(result.body, result.headers), "error");
  }
});

$("logout-all").addEventListener("click", async () => {
  if (!await confirmAction("Log out everywhere? Every session of this account ends, on every "
                           + "device.", "Log out everywhere")) return;
  const result = await call("POST", "/auth/logout-all", { auth: true });
  signedOut();
  if (result.status === 200) {
    notify(`Logged out everywhere: ${plural(result.body.sessions_ended, "session")} ended.`);
  } else {
    notify("Logged out here; the server said: " + problemText(result.body, result.headers), "error");
  }
});

// The second factor ---------------------------------------------------------------------

// While a new seed waits for its first code: the password it was asked with, for the
// recovery codes made once the code is confirmed (kept in this variable only, and
// forgotten then, at cancel and at logout).
let enrolment = null;

function showTotp() {
  const on = Boolean(me && me.totp_enabled);
  $("totp-status").textContent = on
    ? "On: logging in takes the password and a code of your authenticator app."
    : "Off: logging in takes the password alone.";
  $("totp-start-form").hidden = on || enrolment !== null;
  $("totp-enrol").hidden = on || enrolment === null;
  $("totp-codes-form").hidden = !on;
  $("totp-disable-form").hidden = !on;
}

function forgetEnrolment() {
  enrolment = null;
  $("totp-secret").textContent = "";
  $("totp-uri").textContent = "";
  $("totp-confirm-form").reset();
}

function hideRecoveryCodes() {
  $("totp-recovery-codes").replaceChildren();
  $("totp-recovery").hidden = true;
}

// Ten recovery codes, shown on the page this once (as text: never markup); `replaced`
// when codes made before have just stopped working.
function showRecoveryCodes(codes, replaced) {
  $("totp-recovery-codes").replaceChildren(...codes.map((text) => element("li", { text })));
  $("totp-recovery-replaced").hidden = !replaced;
  $("totp-recovery").hidden = false;
  $("totp-recovery-done").focus();
}

// Asks the service for ten new recovery codes, the password confirming it is the owner;
// an answer other than the codes is returned for the caller to show.
function newRecoveryCodes(password) {
  return call("POST", "/auth/me/totp/recovery-codes", {
    json: { current_password: password }, auth: true,
    logged: "(ten recovery codes: shown above, this once)",
  });
}

$("totp-start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form, "totp-result");
  if (missingFields(form)) return;
  const password = new FormData(form).get("current_password");
  const result = await call("POST", "/auth/me/totp", {
    json: { current_password: password }, auth: true,
    logged: "(a new secret: shown above, this once)",
  });
  if (result.status !== 200) { showProblem(form, "totp-result", result); return; }
  form.reset();
  hideRecoveryCodes();
  enrolment = { password };
  $("totp-secret").textContent = result.body.secret;
  $("totp-uri").textContent = result.body.otpauth_uri;
  $("totp-expires").textContent = plural(Math.round(result.body.expires_in / 60), "minute");
  showTotp();
  $("totp-confirm-code").focus();
});

$("totp-confirm-cancel").addEventListener("click", () => {
  forgetEnrolment();
  clearFormErrors($("totp-confirm-form"), "totp-result");
  showTotp();
});

$("totp-confirm-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form, "totp-result");
  if (missingFields(form)) return;
  const code = new FormData(form).get("code").trim();
  const result = await call("POST", "/auth/me/totp/confirm", { json: { code }, auth: true });
  if (result.status !== 200) {
    if (result.status === 409) { forgetEnrolment(); showTotp(); } // it expired: start again
    showProblem(form, "totp-result", result);
    return;
  }
  const { password } = enrolment;
  forgetEnrolment();
  me = result.body;
  showTotp();
  notify("The second factor is on: logging in now takes a code of the app too.");
  const codes = await newRecoveryCodes(password);
  if (codes.status !== 200) {
    showResult("totp-result", "The factor is on, but no recovery codes were made: "
               + problemText(codes.body, codes.headers), "error");
    return;
  }
  showRecoveryCodes(codes.body.codes, false);
});

$("totp-recovery-done").addEventListener("click", hideRecoveryCodes);

$("totp-codes-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form, "totp-result");
  if (missingFields(form)) return;
  const result = await newRecoveryCodes(new FormData(form).get("current_password"));
  if (result.status !== 200) {
    // Turned off, or the account changed, meanwhile (in another session): the card shows
    // it as it is now.
    if (result.status === 409) await loadProfile();
    showProblem(form, "totp-result", result);
    return;
  }
  form.reset();
  showRecoveryCodes(result.body.codes, true);
  notify("New recovery codes: the ones made before no longer work.");
});

$("totp-disable-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form, "totp-result");
  if (missingFields(form)) return;
  const data = new FormData(form);
  const result = await call("POST", "/auth/me/totp/disable", {
    json: { current_password: data.get("current_password"), code: data.get("code").trim() },
    auth: true,
  });
  if (result.status !== 200) { showProblem(form, "totp-result", result); return; }
  form.reset();
  hideRecoveryCodes();
  me = result.body;
  showTotp();
  notify("The second factor is off: logging in takes the password alone.");
});

// Mail: the outbox, and where its links lead -------------------------------------------

// The token of a mailed link, from the fragment (browsers send fragments to no server).
function linkToken() {
  const match = /^#token=([A-Za-z0-9._-]+)$/.exec(location.hash);
  return match ? match[1] : null;
}

function leaveLink() {
  history.replaceState(null, "", "/");
}

// A message's text, the links it mails made clickable: a whole word that leads to this
// page with a token. The rest is text, addresses included: they are what a registrant
// typed, and `//evil.example/#token=x@example.com` is a valid one.
function messageText(text) {
  const pre = element("pre");
  for (const part of text.split(/(\s+)/)) {
    const href = mailedLink(part);
    if (href) {
      const link = element("a", { text: part });
      link.href = href;
      pre.append(link);
    } else {
      pre.append(part);
    }
  }
  return pre;
}

function mailedLink(word) {
  if (!/^\S*#token=[A-Za-z0-9._-]+$/.test(word)) return null;
  try {
    const url = new URL(word, location.href);
    return url.origin === location.origin ? url.href : null;
  } catch (error) {
    return null; // not a URL
  }
}

// The outbox holds reset links, so the demo shows it only to whoever started it: with the
// key of the link it printed (`#outbox=…`), kept for this tab only and sent in a header.
// The fragment is never sent to the server; it is taken off the address bar and the tab's
// history.
const OUTBOX_KEY = "s3auth-demo-outbox-key";

function takeOutboxKey() {
  const match = /^#outbox=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!match) return false;
  sessionStorage.setItem(OUTBOX_KEY, match[1]);
  leaveLink();
  return true;
}

let outboxCount = 0;

async function loadOutbox() {
  const key = sessionStorage.getItem(OUTBOX_KEY);
  const list = $("outbox");
  let result = null;
  if (key !== null) {
    result = await call("GET", "/demo/outbox", { quiet: true, headers: { "Demo-Outbox-Key": key } });
    // Refused: the key of an earlier start of the demo (a new one is printed at each).
    if (result.status === 404) sessionStorage.removeItem(OUTBOX_KEY);
  }
  list.replaceChildren();
  $("outbox-closed").hidden = result !== null && result.status === 200;
  if (result === null || result.status !== 200) return outboxCount;
  outboxCount = result.body.messages.length;
  for (const message of result.body.messages) {
    const time = formatTime(message.sent_at, { timeStyle: "medium" });
    list.append(element("li", { className: "message" },
      element("strong", { text: message.subject }), ` to ${message.to}, ${time}`,
      messageText(message.text)));
  }
  if (!result.body.messages.length) list.append(element("li", { text: "Empty." }));
  return outboxCount;
}

async function openOutbox() {
  await loadOutbox();
  $("outbox-card").scrollIntoView();
}

// The printed link opened in a tab that shows the page already.
window.addEventListener("hashchange", async () => {
  if (takeOutboxKey()) await openOutbox();
});

// A mail goes out after the answer (so that the answer takes as long for any name): look
// again, for up to ten seconds, until one more message than before is there.
async function loadOutboxUntilNew(before) {
  for (let look = 0; look < 40 && sessionStorage.getItem(OUTBOX_KEY) !== null; look++) {
    if (await loadOutbox() > before) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

$("outbox-refresh").addEventListener("click", loadOutbox);

$("forgot-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form, "forgot-result");
  if (missingFields(form)) return;
  const username = new FormData(form).get("username");
  const before = await loadOutbox();
  const result = await call("POST", "/auth/password/forgot", { json: { username } });
  if (result.status !== 202) { showProblem(form, "forgot-result", result); return; }
  // The same answer whether the account exists: only its owner's inbox tells.
  showResult("forgot-result", "Check your inbox: in this demo, the outbox below.");
  await loadOutboxUntilNew(before);
});

$("reset-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  clearFormErrors(form, "reset-result");
  if (missingFields(form)) return;
  const json = { token: linkToken(), new_password: new FormData(form).get("new_password") };
  const result = await call("POST", "/auth/password/reset", { json });
  const refusedPassword = ["weak_password", "password_breached"];
  if (result.status === 422 && result.body && refusedPassword.includes(result.body.code)) {
    showFieldError(form, "new_password", result.body.errors || [result.body.detail]);
    showResult("reset-result", result.body.title, "error");
    return;
  }
  if (result.status !== 204) {
    showResult("reset-result", problemText(result.body, result.headers), "error");
    return;
  }
  form.reset();
  $("reset-card").hidden = true;
  leaveLink();
  signedOut();
  notify("Password changed, and every session ended. Log in with the new password.");
  $("login-password").focus();
});

async function verifyEmail(token) {
  const result = await call("POST", "/auth/email/verify", { json: { token } });
  leaveLink();
  if (result.status === 204) {
    notify("Email address verified.");
    if (me) await loadProfile();
  } else {
    notify("Not verified: " + problemText(result.body, result.headers), "error");
  }
}

// The password rules are the service's policy, which its OpenAPI document describes.
async function showPasswordRules() {
  const response = await fetch("/auth/openapi.json", { credentials: "same-origin" });
  if (!response.ok) return;
  const schemas = (await response.json()).components?.schemas ?? {};
  const rules = schemas.RegisterRequest?.properties?.password?.description;
  if (!rules) return;
  for (const node of document.querySelectorAll(".password-rules")) node.textContent = rules;
}

// Back after a reload: in browser mode the refresh cookie still holds the session.
(async () => {
  showPasswordRules();
  const outboxOpened = takeOutboxKey();
  if (await refreshTokens(true)) await loadProfile();
  const token = linkToken();
  if (location.pathname === "/reset-password" && token) {
    $("reset-card").hidden = false;
    $("reset-password").focus();
  } else if (location.pathname === "/verify-email" && token) {
    await verifyEmail(token);
  }
  if (outboxOpened) await openOutbox(); else await loadOutbox();
})();
