// The technician's console: one ES module, no build step, no third-party code.
//
// The page talks to the daemon's local API (docs/openapi.yaml) through `stipplectl console`.
// Its event stream is its presence: the page opens GET /v1/events with its own client id and
// proves it is alive with POST /v1/presence every 250 ms; arming from this page makes that
// stream the lease holder. A closed tab, a dead bridge or a frozen page (no pings for a second)
// all end the lease in the daemon, which stops the needle and latches `operator_lost`. Hiding the
// page while armed ends the lease on purpose (docs/console.md argues why). A reconnected page has
// a new client id: it never gets a lease back.

import { Gauge, StripChart } from "/console/gauges.js";

const $ = (id) => document.getElementById(id);
const PING_MS = 250;

const state = {
  client: null, status: null, limits: null, phase: "no_session", telemetry: null,
  stream: null, pinger: null, holdsLease: false, connected: false, engineer: false,
  lastFault: null, muted: localStorage.getItem("stipple.muted") === "1",
  faultDetails: {}, warnings: {}, statusAt: 0, telemetryAt: 0,
};

// ---- The API ---------------------------------------------------------------------------------

// `timeout`: how long an answer may take (stops wait as long as it takes). A browser gives a page
// six connections to one host; the stream holds one, and the page never has more than a ping,
// one status and one checklist request out, so a stop always finds a free one.
async function api(method, path, body, extraHeaders = {}, timeout = 5000) {
  // X-Stipple-Console: a page of another origin cannot send it without a preflight the bridge
  // never grants (docs/console.md).
  const headers = { "X-Stipple-Console": "1", ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
      signal: timeout ? AbortSignal.timeout(timeout) : undefined });
  } catch (error) {
    const late = error && error.name === "TimeoutError";
    return { ok: false, status: 0, problem: { detail: late ? `no answer within ${timeout / 1000} s` : "the console's bridge cannot be reached (stipplectl console stopped?)" } };
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (response.ok) return { ok: true, status: response.status, json };
  return { ok: false, status: response.status, problem: json || { detail: `HTTP ${response.status}` } };
}

/** A refusal in words, naming each bad field with its value and the allowed range. */
function describe(problem) {
  const detail = problem.detail || problem.title || "refused";
  const parts = [detail];
  for (const error of problem.errors || []) {
    if (!(detail.includes(error.field) && detail.includes(error.value))) parts.push(`${error.field} = ${error.value}: allowed ${error.allowed}`);
  }
  return parts.join(" — ");
}

// ---- The event stream: presence, and everything live -----------------------------------------

function newClientID() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads a Server-Sent Events body to its end, handing each event's type and parsed data on.
 * A bad event is logged and skipped; the stream goes on. */
async function readEvents(response, handle) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) { try { handle(type, JSON.parse(data)); } catch (error) { console.error("bad event", error); } }
    }
  }
}

async function openStream() {
  closeStream();
  const client = newClientID();
  const controller = new AbortController();
  state.client = client;
  state.stream = controller;
  state.holdsLease = false;
  let response;
  try {
    response = await fetch("/v1/events", { headers: { "X-Stipple-Client": client, "X-Stipple-Console": "1", Accept: "text/event-stream" }, signal: controller.signal, cache: "no-store" });
  } catch {
    return disconnected("The daemon cannot be reached through the console's bridge. Retrying…");
  }
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try { detail = describe(await response.json()); } catch {}
    // 503: the bridge says why the daemon cannot be reached (stopped, starting, or refused to
    // start, with its reason). 403: this browser or user may not use the console.
    return disconnected(response.status === 503 ? detail : `Refused: ${detail}`, response.status !== 403);
  }
  connectedNow();
  state.pinger = setInterval(ping, PING_MS);
  try { await readEvents(response, onEvent); } catch {}
  if (state.stream === controller) disconnected("The connection to the daemon was lost (it may be restarting). Reconnecting — arm again when it is back.");
}

function closeStream() {
  if (state.pinger) clearInterval(state.pinger);
  state.pinger = null;
  if (state.stream) state.stream.abort();
  state.stream = null;
  setLease(false);
}

let pinging = false, pingTrouble = false;
async function ping() {
  const client = state.client;
  if (!client || pinging) return;
  pinging = true;
  const answer = await api("POST", "/v1/presence", undefined, { "X-Stipple-Client": client }, 1500);
  pinging = false;
  if (client !== state.client) return;
  if (answer.ok) {
    if (pingTrouble) { pingTrouble = false; banner(null); }
    return;
  }
  pingTrouble = true;
  // A ping the daemon did not take is a sign of life lost: say so at once, rather than show an
  // armed screen until the fault arrives. 409: the daemon no longer knows this stream.
  if (answer.status === 409) disconnected("The daemon lost this screen's connection. Reconnecting — arm again when it is back.");
  else banner(`Signs of life are not reaching the daemon: ${describe(answer.problem)}`);
}

let retry = null;
function disconnected(message, again = true) {
  closeStream();
  state.connected = false;
  banner(message);
  // Nothing on the screen may look live while it is not.
  for (const id of ["depth", "rate", "motor", "pedal", "phase", "link", "may-move"]) $(id).textContent = "— (not connected)";
  gauge.value(null);
  buttons();
  if (again && !retry) retry = setTimeout(() => { retry = null; openStream(); }, 1000);
}

function connectedNow() {
  state.connected = true;
  banner(null);
  refreshLimits();
}

function banner(message) {
  const element = $("connection");
  element.hidden = !message;
  if (message) element.textContent = message;
}

function onEvent(type, event) {
  switch (type) {
    case "status": applyStatus(event); break;
    case "telemetry": applyTelemetry(event); break;
    case "state":
      state.phase = event.phase;
      $("phase").textContent = phaseWords[event.phase] || event.phase;
      if (!["armed", "running", "paused"].includes(event.phase)) setLease(false);
      buttons();
      refreshStatus();
      break;
    case "fault": state.faultDetails[event.reason] = event.detail; refreshStatus(); break;
    case "warning": showWarning(event.kind, event.detail || event.kind); break;
    case "session":
      if (event.state === "closed" && event.reason && event.reason !== "technician") {
        showWarning("session_closed", `The session closed: ${closeWords[event.reason] || event.reason}.`, true);
      }
      refreshStatus();
      break;
    case "link":
      if (event.state === "lost" || event.state === "not_answering") {
        showWarning("link", `The pen link ${event.state === "lost" ? "was lost" : "is not answering"}${event.reason ? ": " + event.reason : ""}.`, true);
      }
      refreshStatus();
      break;
    case "pen":
      if (event.state === "refused") showWarning("pen", `The pen was refused: ${event.reason || "see the Pen screen"}.`, true);
      refreshStatus();
      break;
    default: refreshStatus();
  }
}

// ---- State on the screen ---------------------------------------------------------------------

// Each status answer travels on its own connection: an older one arriving after a newer one is
// dropped, so the screen never goes back in time.
let statusAsked = 0, statusShown = 0, statusOut = false, statusAgain = false;
async function refreshStatus() {
  // One request out at a time; asked again meanwhile, it asks once more when it is back.
  if (statusOut) { statusAgain = true; return; }
  statusOut = true;
  const number = ++statusAsked;
  const answer = await api("GET", "/v1/status");
  statusOut = false;
  if (statusAgain) { statusAgain = false; refreshStatus(); }
  if (!answer.ok || number < statusShown) return;
  statusShown = number;
  applyStatus(answer.json);
  if (!$("view-session").hidden) refreshChecklist();
  // A status asked for after the arm was answered and showing no armed phase: the lease is gone
  // (say, the pen refused the arm and its event came before the arm's answer).
  if (number > leaseAsOf && !["armed", "running", "paused"].includes(answer.json.phase)) setLease(false);
}
let leaseAsOf = Infinity;

async function refreshLimits() {
  const answer = await api("GET", "/v1/limits");
  if (answer.ok) { state.limits = answer.json; drawGauge(); showRanges(); clockRules(); }
}

const phaseWords = {
  no_session: "No session", open: "Open — not armed", armed: "Armed — press the pedal", running: "● Running",
  paused: "Paused", closed: "Closed", faulted: "⚠ Faulted",
};

function applyStatus(status) {
  const sessionID = status.session ? status.session.id : null;
  if (state.status && (state.status.session ? state.status.session.id : null) !== sessionID) {
    // A new session (or none): the last one's warnings are not this one's.
    for (const kind of Object.keys(state.warnings)) if (kind !== "session_closed") delete state.warnings[kind];
    renderWarnings();
  }
  state.status = status;
  state.statusAt = performance.now();
  state.phase = status.phase;
  $("phase").textContent = phaseWords[status.phase] || status.phase;
  $("may-move").textContent = status.may_move ? "▲ MAY MOVE (pedal runs it)" : "■ cannot move";
  if (status.records && status.records !== "ok") showWarning("records", `The records: ${status.records}. Arming is refused until they are fixed.`, true);
  else if (state.warnings.records) { delete state.warnings.records; renderWarnings(); }
  const pen = status.pen || {};
  $("pen").textContent = pen.connected ? `${pen.serial || "?"} (${pen.firmware || "?"}) ${pen.state || ""}` : "✕ not connected";
  const link = pen.link || {};
  $("link").textContent = pen.connected ? linkWords(link) : "✕ no link";
  const cartridge = pen.cartridge;
  // A pen without a reader (GPIO) has its cartridge typed into the session.
  const typed = status.session && status.session.cartridge_id;
  $("cartridge").textContent = cartridge ? `${cartridge.id} (lot ${cartridge.lot || "?"})` : typed ? `${typed} (typed)` : "none inserted";
  if (pen.refusal) showWarning("pen", `The pen is refused: ${pen.refusal}`, true);
  const session = status.session;
  $("session-line").textContent = session ? `${session.id} · client ${session.client_id} · ${session.zone}` : "none open";
  if (session) clock(session.elapsed_ms, session.remaining_ms); else clock(null, null);
  const faults = status.faults || [];
  if (faults.length) showFaults(faults); else hideFault();
  // Whether this page holds the lease is decided by its own stream's events only (in order),
  // never by a status answer that may have been asked for before the arm.
  drawGauge();
  buttons();
}

function linkWords(link) {
  // Quality as the counts a technician can act on: frames refused and retransmissions.
  const received = link.frames_received || 0, rejected = link.frames_rejected || 0;
  const quality = received ? Math.round(100 * received / (received + rejected + (link.pen_frames_lost || 0))) : 100;
  return `${quality >= 99 ? "✓" : "⚠"} ${quality}% frames good, ${link.retransmissions || 0} resent`;
}

function applyTelemetry(t) {
  state.telemetry = t;
  const now = performance.now();
  state.telemetryAt = now;
  $("depth").textContent = t.depth_um === null ? "—" : String(t.depth_um);
  $("rate").textContent = t.rate_hz === null ? "—" : `${t.rate_hz.toFixed(0)} Hz`;
  $("motor").textContent = t.motor_on ? "● ON" : "○ off";
  $("pedal").textContent = t.pedal ? "▼ down" : "△ up";
  gauge.value(t.depth_um);
  chart.push(now, t.depth_um, t.rate_hz);
  if (measuring) {
    // The benchmark's probe (make bench-console): when this frame's numbers reached the screen.
    requestAnimationFrame(() => {
      screenTimes.push([t.session_time_ms, performance.timeOrigin + performance.now()]);
      if (screenTimes.length > 20000) screenTimes.shift();
    });
  }
}

// Off unless a benchmark sets localStorage "stipple.measure" = "1".
const measuring = localStorage.getItem("stipple.measure") === "1";
const screenTimes = [];
window.stippleScreenTimes = () => screenTimes.splice(0);

function clock(elapsed, remaining) {
  const card = document.querySelector(".clock-card");
  if (elapsed === null) { $("elapsed").textContent = "—"; $("remaining").textContent = "no session"; card.classList.remove("warn"); return; }
  $("elapsed").textContent = hms(elapsed);
  const warnings = (state.limits && state.limits.effective_warnings_s) || [10800, 13500];
  const past = warnings.filter((w) => elapsed >= w * 1000).length;
  $("remaining").textContent = `${hms(remaining)} left${past ? ` — ⚠ past the ${hms(warnings[past - 1] * 1000).slice(0, -3)} warning` : ""}`;
  card.classList.toggle("warn", past > 0);
}

/** The session clock between status answers: it runs from the opening, pauses included, as
 * the daemon's does; each status answer sets it again. Closed or no session: it stands. */
function tickClock() {
  const session = state.status && state.status.session;
  if (!session || !state.connected) return;
  const running = !["closed", "no_session"].includes(state.phase) && !session.close_reason;
  const passed = running ? performance.now() - state.statusAt : 0;
  clock(session.elapsed_ms + passed, Math.max(0, session.remaining_ms - passed));
}

/** Readings older than a second are not shown as live. */
function checkTelemetryAge() {
  if (!state.connected) return;
  const age = state.telemetryAt ? performance.now() - state.telemetryAt : Infinity;
  if (age <= 1000) return;
  const words = state.telemetryAt ? `— (no telemetry for ${Math.round(age / 1000)} s)` : "— (no telemetry yet)";
  for (const id of ["depth", "rate", "motor", "pedal"]) $(id).textContent = words;
  gauge.value(null);
}

function clockRules() {
  const limits = state.limits;
  if (!limits) return;
  const warnings = (limits.effective_warnings_s || []).map((w) => hms(w * 1000).slice(0, -3));
  $("clock-rules").textContent = `· warnings at ${warnings.join(" and ") || "—"} · closes at ${hms(limits.session_length_s * 1000).slice(0, -3)}`;
}

function hms(ms) {
  const s = Math.floor(ms / 1000);
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

const faultWords = {
  over_depth: "the needle went deeper than allowed", depth_sensor: "the depth sensor failed",
  implausible_telemetry: "the pen reported impossible numbers", rate_out_of_window: "the stroke rate left its window",
  rate_runaway: "the stroke rate ran away", stall: "the motor stalled", telemetry_silence: "the pen stopped reporting",
  link_lost: "the link to the pen was lost", pen_fault: "the pen reported a fault of its own (over-current, over-temperature…)",
  pen_reset: "the pen restarted", cartridge_removed: "the cartridge was taken out", cartridge_changed: "the cartridge was changed while armed",
  pen_unresponsive: "the pen did not answer a command", records_unavailable: "the records could not be written",
  emergency_stop: "the emergency stop was pressed",
  operator_lost: "the operator's screen stopped answering (closed, hidden, hung or disconnected)",
  unexpected_motion: "the needle moved when it should not have", daemon_restarted: "the daemon restarted during the session",
};

const closeWords = { time_limit: "the session reached its time limit", clock_untrusted: "the session clock could not be trusted",
  record_corrupted: "its record was found altered" };

/** Every latched fault, each in words with the daemon's detail; a tone for each new one. */
function showFaults(reasons) {
  $("fault").hidden = false;
  $("fault-reason").textContent = reasons.map((r) => faultWords[r] ? `${faultWords[r]} (${r})` : r).join("; ");
  $("fault-detail").textContent = reasons.map((r) => state.faultDetails[r]).filter(Boolean).join(" · ");
  const key = reasons.join(",");
  if (state.lastFault !== key) {
    if (reasons.some((r) => !(state.lastFault || "").split(",").includes(r))) tone(330);
    state.lastFault = key;
  }
}

function hideFault() { $("fault").hidden = true; state.lastFault = null; state.faultDetails = {}; }

/** Warnings by kind (a newer one of a kind replaces the older); cleared with the session. */
function showWarning(kind, text, urgent = false) {
  const was = state.warnings[kind];
  const isTime = kind === "session_time";
  const lastTime = isTime && state.limits && (state.limits.effective_warnings_s || []).slice(-1)[0];
  const elapsed = state.status && state.status.session ? state.status.session.elapsed_ms : 0;
  state.warnings[kind] = { text, urgent: urgent || (isTime && lastTime && elapsed >= (lastTime - 60) * 1000) };
  renderWarnings();
  if (!was || was.text !== text) tone(660);
}

function renderWarnings() {
  const list = $("warning-list");
  list.textContent = "";
  for (const { text, urgent } of Object.values(state.warnings)) {
    const item = document.createElement("li");
    item.textContent = `⚠ ${text}`;
    if (urgent) item.className = "urgent";
    list.append(item);
  }
  $("warning").hidden = list.childElementCount === 0;
}

function setLease(holds) {
  state.holdsLease = holds;
  $("lease").hidden = !holds;
}

function buttons() {
  const phase = state.phase;
  for (const id of ["arm", "arm2"]) $(id).disabled = !state.connected || phase !== "open" || arming;
  for (const id of ["disarm", "disarm2"]) $(id).disabled = !["armed", "running", "paused"].includes(phase);
  $("close-session").disabled = !["open", "faulted", "armed", "paused"].includes(phase);
}

// ---- Gauge and chart -------------------------------------------------------------------------

const gauge = new Gauge($("gauge"));
const chart = new StripChart($("chart"));

function drawGauge() {
  const limits = state.limits;
  if (!limits) return;
  const session = state.status && state.status.session;
  const layer = session && session.setpoint ? session.setpoint.layer : "upper_dermis";
  const band = limits[layer] || limits.upper_dermis;
  const zoneMax = session && limits.zone_max_um ? limits.zone_max_um[session.zone] : null;
  const marks = { band: [band.min_um, band.max_um], trip: session ? session.depth_trip_um : null, zone: zoneMax, ceiling: limits.site_ceiling_um };
  gauge.scale(marks);
  $("legend-band").textContent = `${band.min_um}–${band.max_um} µm (${layer.replace("_", " ")})`;
  $("legend-trip").textContent = marks.trip ? `${marks.trip} µm` : "—";
  $("legend-zone").textContent = zoneMax ? `${zoneMax} µm` : "—";
  $("legend-ceiling").textContent = `${limits.site_ceiling_um} µm`;
  $("rate-window").textContent = `(window ${limits.rate_min_hz}–${limits.rate_max_hz} Hz)`;
  chart.scale(limits.site_ceiling_um, limits.rate_max_hz);
}

function showRanges() {
  const limits = state.limits;
  const layer = document.querySelector("#setpoint-form [name=layer]").value;
  const band = limits[layer];
  $("depth-range").textContent = `(${band.min_um}–${band.max_um})`;
  $("rate-range").textContent = `(${limits.rate_min_hz}–${limits.rate_max_hz})`;
}

// ---- Actions ---------------------------------------------------------------------------------

async function stop(kind) {
  // Never asks: a stop goes out at once, whatever else the page is doing (the bridge sends it
  // to the daemon's stop socket), and its answer is shown beside STOP. A stop that gets no
  // answer is sent again, three times in all.
  const said = $("stop-result");
  said.hidden = false;
  said.className = "stop-result";
  said.textContent = kind === "estop" ? "E-STOP sent…" : "STOP sent…";
  let answer;
  for (let attempt = 0; attempt < 3; attempt++) {
    answer = await api("POST", kind === "estop" ? "/v1/estop" : "/v1/stop", undefined, {}, 0);
    if (answer.ok || answer.status !== 0) break;
  }
  if (answer.ok) {
    const unrecorded = answer.json && answer.json.unrecorded;
    said.textContent = `■ ${kind === "estop" ? "Emergency-stopped" : "Stopped"}${unrecorded ? ` — ${unrecorded.detail}` : ""}`;
  } else {
    said.className = "stop-result bad";
    said.textContent = `✕ The ${kind === "estop" ? "E-STOP" : "STOP"} was not confirmed: ${describe(answer.problem)} — use the pen's own stop button.`;
  }
  refreshStatus();
}

/** The checklist: every failing check at once, each in the daemon's words on what to do. */
let checklistText = "";
function renderChecklist(lines) {
  // Redrawn only when it changed: it is a live region, read out on every change.
  const text = JSON.stringify(lines);
  if (text === checklistText) return;
  checklistText = text;
  const list = $("checklist");
  list.textContent = "";
  for (const [good, text] of lines) {
    const item = document.createElement("li");
    item.className = good ? "good" : "bad";
    item.textContent = `${good ? "✓" : "✕"} ${text}`;
    list.append(item);
  }
}

const checkAdvice = {
  session_not_open: "Open a session (above).", setpoint_missing: "Set the setpoint (above).", setpoint_invalid: "Set a setpoint inside the limits.",
  no_cartridge: "Insert a cartridge or set it (above).", cartridge_expired: "Use a cartridge that has not expired.",
  cartridge_reused: "Use a new cartridge: each is used once.", pedal_pressed: "Lift the foot from the pedal.",
  estop_pressed: "Release the pen's e-stop button.", fault_latched: "Clear the fault (Run screen) once its cause is gone.",
  client_not_connected: "This screen is reconnecting; wait a moment.", pen_not_identified: "Connect the pen.",
  limits_unverified: "Wait a moment: the pen is taking the limits.",
};

let checklistAsked = 0, checklistShown = 0, checklistOut = false;
async function refreshChecklist() {
  if (!state.client || checklistOut) return;
  checklistOut = true;
  const number = ++checklistAsked;
  const answer = await api("GET", "/v1/arming-checks", undefined, { "X-Stipple-Client": state.client });
  checklistOut = false;
  if (!answer.ok || number < checklistShown) return;
  checklistShown = number;
  const { ready, blocked, failures } = answer.json;
  if (["armed", "running", "paused"].includes(state.phase)) return renderChecklist([[true, "Armed. Press the pedal to run."]]);
  if (ready) return renderChecklist([[true, "Every check passes: ready to arm."]]);
  const lines = failures.map((f) => [false, `${f.message}${checkAdvice[f.code] ? " — " + checkAdvice[f.code] : ""} (${f.code})`]);
  if (blocked) lines.unshift([false, `${blocked.detail} (${blocked.code})`]);
  renderChecklist(lines);
}

let arming = false;
async function arm() {
  if (arming) return;
  arming = true;
  buttons();
  const client = state.client;
  const answer = await api("POST", "/v1/arm", undefined, { "X-Stipple-Client": client }, 15000);
  arming = false;
  buttons();
  if (answer.ok && client !== state.client) {
    // The stream was replaced while the arm was on its way: that arm's lease ended with it.
    renderChecklist([[false, "The connection was renewed while arming: arm again."]]);
  } else if (answer.ok && document.visibilityState === "hidden") {
    // Armed while this page was hidden: it may not hold the needle unseen.
    disconnected("This screen was hidden as it armed: the needle was stopped. Arm again with the screen in front.");
    return;
  } else if (answer.ok) {
    setLease(true);
    leaseAsOf = statusAsked;
    renderChecklist([[true, "Every check passed: armed. Press the pedal to run."]]);
  } else {
    const failures = (answer.problem && answer.problem.arming_failures) || [];
    renderChecklist((failures.length ? failures : [{ code: answer.problem.code, message: describe(answer.problem) }])
      .map((f) => [false, `${f.message}${checkAdvice[f.code] ? " — " + checkAdvice[f.code] : ""} (${f.code})`]));
    // Failed checks are on the Session screen; any other refusal (a second tap) stays here.
    if (answer.problem && answer.problem.code === "arming_checks_failed") showView("session");
  }
  refreshStatus();
}

async function disarm() { await api("POST", "/v1/disarm"); refreshStatus(); }

function result(element, answer, good) {
  element.classList.toggle("bad", !answer.ok);
  element.classList.toggle("good", answer.ok);
  element.textContent = answer.ok ? good : `✕ ${describe(answer.problem)}`;
}

function form(id, handler) {
  $(id).addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(event.target).entries());
    const [answer, good] = await handler(data);
    result(event.target.querySelector(".result"), answer, good);
    refreshStatus();
  });
}

form("open-form", async (data) => {
  const body = { client_id: data.client_id.trim(), zone: data.zone, cartridge_id: data.cartridge_id.trim(),
    pigment_lots: data.pigment_lots.split(",").map((s) => s.trim()).filter(Boolean) };
  if (data.gap_override_reason.trim()) body.gap_override_reason = data.gap_override_reason.trim();
  const answer = await api("POST", "/v1/sessions", body);
  if (answer.ok) document.querySelector("#cartridge-form [name=cartridge_id]").value = body.cartridge_id;
  return [answer, answer.ok ? `✓ Session ${answer.json.session.id} open for client ${body.client_id}.` : ""];
});

form("cartridge-form", async (data) => {
  const session = state.status && state.status.session;
  if (!session) return [{ ok: false, problem: { detail: "open a session first" } }, ""];
  const body = { cartridge_id: data.cartridge_id.trim() };
  if (data.lot.trim()) body.lot = data.lot.trim();
  if (data.expiry) body.expiry_day = Math.floor(Date.parse(data.expiry + "T00:00:00Z") / 86400000);
  const answer = await api("PUT", `/v1/sessions/${encodeURIComponent(session.id)}/cartridge`, body);
  return [answer, "✓ Cartridge set."];
});

form("setpoint-form", async (data) => {
  const session = state.status && state.status.session;
  if (!session) return [{ ok: false, problem: { detail: "open a session first" } }, ""];
  const depth = Number(data.depth_um), rate = Number(data.rate_hz);
  // Sent as typed: the daemon names a refused field with its value and range. Only what is not a
  // number at all is refused here, with the same words.
  if (data.depth_um.trim() === "" || !Number.isFinite(depth)) return [{ ok: false, problem: { detail: "refused", errors: [{ field: "depth_um", value: data.depth_um || "(empty)", allowed: $("depth-range").textContent + " µm, a whole number" }] } }, ""];
  if (data.rate_hz.trim() === "" || !Number.isFinite(rate)) return [{ ok: false, problem: { detail: "refused", errors: [{ field: "rate_hz", value: data.rate_hz || "(empty)", allowed: $("rate-range").textContent + " Hz" }] } }, ""];
  const answer = await api("PUT", `/v1/sessions/${encodeURIComponent(session.id)}/setpoint`, { layer: data.layer, depth_um: depth, rate_hz: rate });
  return [answer, `✓ Setpoint ${depth} µm at ${rate} Hz (${data.layer.replace("_", " ")}).`];
});

async function closeSession() {
  const session = state.status && state.status.session;
  if (!session) return;
  const answer = await api("POST", `/v1/sessions/${encodeURIComponent(session.id)}/close`);
  result($("session-result"), answer, `✓ Session ${session.id} closed.`);
  refreshStatus();
}

// ---- History and Pen -------------------------------------------------------------------------

async function loadHistory() {
  const [sessions, audit] = await Promise.all([api("GET", "/v1/sessions"), api("GET", "/v1/audit/verify")]);
  $("audit-state").textContent = audit.ok ? (audit.json.ok ? `✓ Audit chain intact (${audit.json.entries} entries).` : `✕ Audit chain broken at entry ${audit.json.broken_seq} (${audit.json.first_broken || "see stipplectl audit verify"}).`) : `Audit chain: ${describe(audit.problem)}`;
  const rows = $("history-rows");
  rows.textContent = "";
  for (const s of sessions.ok ? sessions.json : []) {
    const row = document.createElement("tr");
    const cells = [s.id, s.client_id, s.zone, when(s.opened_at), s.closed_at ? `${when(s.closed_at)} (${s.close_reason || ""})` : "open", String(Object.values(s.fault_counts || {}).reduce((a, b) => a + b, 0))];
    for (const [index, text] of cells.entries()) {
      const cell = document.createElement("td");
      if (index === 0) {
        const link = document.createElement("a");
        link.href = `/v1/sessions/${encodeURIComponent(s.id)}/report`;
        link.textContent = text;
        link.target = "_blank";
        link.rel = "noopener";
        link.addEventListener("click", (event) => {
          // A new tab hides this one: while it holds the needle, that would stop it.
          if (!state.holdsLease) return;
          event.preventDefault();
          $("audit-state").textContent = "Disarm first: opening a record hides this screen, which stops the needle.";
        });
        cell.append(link);
      } else cell.textContent = text;
      row.append(cell);
    }
    rows.append(row);
  }
}

function when(seconds) { return seconds ? new Date(seconds * 1000).toLocaleString() : ""; }

async function probeRole() {
  // The daemon decides; the page only hides what it would refuse (GET /v1/me: the caller as the
  // daemon reads it from the socket).
  const answer = await api("GET", "/v1/me");
  state.engineer = answer.ok && answer.json.role === "engineer";
  document.querySelector('.tab[data-view="pen"]').hidden = !state.engineer;
  if (answer.ok) $("who").textContent = `${answer.json.user} (${answer.json.role})`;
}

async function penAction(path) {
  const answer = await api("POST", path, {});
  result($("pen-result"), answer, answer.ok ? `✓ ${JSON.stringify(answer.json)}` : "");
}

// The pen link's bytes as the daemon reads and writes them (GET /v1/bringup/trace, engineers):
// the last 60 reads and writes, newest last. Runs while the Pen screen asks for it.
let trace = null;
async function toggleTrace() {
  const button = $("pen-trace"), pre = $("trace");
  if (trace) { trace.abort(); trace = null; button.setAttribute("aria-pressed", "false"); button.textContent = "Live trace"; return; }
  trace = new AbortController();
  button.setAttribute("aria-pressed", "true");
  button.textContent = "Stop trace";
  pre.hidden = false;
  pre.textContent = "starting…";
  const lines = [];
  const controller = trace;
  try {
    const response = await fetch("/v1/bringup/trace", { headers: { "X-Stipple-Console": "1", Accept: "text/event-stream" }, signal: controller.signal, cache: "no-store" });
    if (!response.ok) { let problem = {}; try { problem = await response.json(); } catch {} pre.textContent = `✕ ${describe(problem)}`; trace = null; button.textContent = "Live trace"; return; }
    await readEvents(response, (type, event) => {
      if (event.type === "trace") lines.push(`trace of ${event.transport || "no transport (this pen has no byte stream)"}`);
      else lines.push(`${(event.t_us / 1e6).toFixed(6)} ${event.direction === "to_pen" ? "→ pen" : "← pen"} ${event.hex.replace(/(..)/g, "$1 ").trim()}`);
      if (lines.length > 60) lines.shift();
      pre.textContent = lines.join("\n");
      pre.scrollTop = pre.scrollHeight;
    });
  } catch {}
  if (trace === controller) { trace = null; button.setAttribute("aria-pressed", "false"); button.textContent = "Live trace"; }
}

function showPen() {
  const facts = $("pen-facts");
  facts.textContent = "";
  const pen = (state.status && state.status.pen) || {};
  for (const [key, value] of Object.entries(pen)) {
    const wrap = document.createElement("div");
    const dt = document.createElement("dt"); dt.textContent = key;
    const dd = document.createElement("dd"); dd.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    wrap.append(dt, dd);
    facts.append(wrap);
  }
}

// ---- Screens, keys, sound --------------------------------------------------------------------

function showView(name) {
  if (name !== "pen" && trace) toggleTrace();
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const tab of document.querySelectorAll(".tab")) {
    if (tab.dataset.view === name) tab.setAttribute("aria-current", "page"); else tab.removeAttribute("aria-current");
  }
  if (name === "history") loadHistory();
  if (name === "session") refreshChecklist();
  if (name === "pen") showPen();
}

let audio = null;
function tone(frequency) {
  if (state.muted) return;
  try {
    audio = audio || new AudioContext();
    const oscillator = audio.createOscillator();
    const gain = audio.createGain();
    oscillator.frequency.value = frequency;
    gain.gain.value = 0.2;
    oscillator.connect(gain).connect(audio.destination);
    oscillator.start();
    oscillator.stop(audio.currentTime + 0.25);
  } catch {}
}

document.addEventListener("keydown", (event) => {
  // Space and Escape stop, anywhere but while typing into a field (where Space is a character;
  // Escape still stops there).
  const active = document.activeElement;
  const typing = active && (active.tagName === "TEXTAREA" || active.tagName === "SELECT"
    || (active.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(active.type)));
  if (event.key === "Escape" || (event.key === " " && !typing)) {
    event.preventDefault();
    stop("stop");
  }
});

document.addEventListener("visibilitychange", () => {
  // Hidden while holding the needle: end the lease now, as closing the tab would, rather than
  // leave it to a throttled timer (docs/console.md). The page reconnects without the lease.
  if (document.visibilityState === "hidden" && state.holdsLease) {
    disconnected("This screen was hidden while armed: the needle was stopped. Arm again to go on.");
  }
});

for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showView(tab.dataset.view));
$("stop").addEventListener("click", () => stop("stop"));
$("estop").addEventListener("click", () => stop("estop"));
for (const id of ["arm", "arm2"]) $(id).addEventListener("click", arm);
for (const id of ["disarm", "disarm2"]) $(id).addEventListener("click", disarm);
$("close-session").addEventListener("click", closeSession);
$("clear-fault").addEventListener("click", async () => {
  const answer = await api("POST", "/v1/clear-fault");
  if (!answer.ok) { $("fault-detail").textContent = describe(answer.problem); } else hideFault();
  refreshStatus();
});
$("warning-dismiss").addEventListener("click", () => { state.warnings = {}; renderWarnings(); });
$("pen-ping").addEventListener("click", () => penAction("/v1/bringup/ping"));
$("pen-identify").addEventListener("click", () => penAction("/v1/bringup/identify"));
$("pen-trace").addEventListener("click", toggleTrace);
document.querySelector("#setpoint-form [name=layer]").addEventListener("change", () => state.limits && showRanges());
$("mute").checked = state.muted;
$("mute").addEventListener("change", (event) => { state.muted = event.target.checked; localStorage.setItem("stipple.muted", state.muted ? "1" : "0"); });
// Space stops everywhere but in text fields, so the mute box is toggled with Enter from the keyboard.
$("mute").addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); $("mute").click(); } });
// A barcode scanner types the code and Enter: in the cartridge field that must not submit the
// whole form half-filled, only move on.
for (const input of document.querySelectorAll('input[name="cartridge_id"]')) {
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const fields = Array.from(input.form.querySelectorAll("input, select, button"));
    const next = fields[fields.indexOf(input) + 1];
    if (next) next.focus();
  });
}
setInterval(() => { if (state.connected) chart.draw(performance.now()); }, 100);
setInterval(() => { tickClock(); checkTelemetryAge(); }, 250);
// The checklist follows what the daemon sees (a pedal lifted, a cartridge inserted) while shown.
setInterval(() => { if (state.connected && !$("view-session").hidden) refreshChecklist(); }, 1000);
buttons();
probeRole();
openStream();
