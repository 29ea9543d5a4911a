// The wallboard page: logs in, follows the live snapshot (server-sent events), draws it in place.
// No framework and no build step.  Every figure is an element made once and updated by its text,
// agents are small cells in a grid per center, the waiting list shows the rows the server lists.
"use strict";

const COMPACT_OVER = 60;        // a center with more agents than this gets the dense grid
const CHART_EVERY = 60000;      // ms between two loads of today's charts

const T = {
  ko: {
    title: "콜센터 현황판", as_of: "기준 시각", reconnecting: "연결 끊김 — 다시 연결 중",
    login_title: "현황판 로그인", user: "사용자 이름", password: "비밀번호", login: "로그인",
    logout: "로그아웃", wrong_login: "사용자 이름 또는 비밀번호가 틀렸습니다",
    locked: "로그인 실패가 많아 잠겼습니다. {n}초 후에 다시 시도하세요",
    queues: "대기열", queue: "대기열", center: "센터", all_centers: "전체", waiting: "대기 고객",
    by_priority: "우선순위별", longest_wait: "최장 대기", service_level: "서비스 수준",
    asa: "평균 응답 시간", abandon_rate: "포기율", answered: "응대", abandoned: "포기",
    callbacks: "콜백", agents: "상담원", available: "대기 중", ringing: "호출 중", on_call: "통화 중",
    wrap_up: "후처리", paused: "일시 중지", offline: "로그아웃", occupancy: "점유율",
    waiting_callers: "대기 중인 고객", priority: "우선순위", reason: "사유", waited: "대기 시간",
    estimate: "예상 대기", number: "전화번호", via: "경로", voice: "전화", video: "영상", no_waiting: "대기 중인 고객이 없습니다",
    more: "외 {n}명 더 대기 중", reservations: "콜백 예약", pending: "예약됨", due: "발신 시각 도래",
    in_progress: "발신 중", failed: "실패", done: "완료", due_at: "발신 예정", cancel: "예약 취소",
    no_reservations: "대기 중인 예약이 없습니다", pause: "일시 중지", resume: "재개",
    wellness: "안부 전화", visits_open: "가정 방문 대기", wellness_ringing: "안부 전화 중",
    wellness_paused: "인입 폭주로 일시 중지: {names}",
    logout_agent: "로그아웃 시키기", pause_reason: "중지 사유", close: "닫기",
    charts_title: "오늘의 통화 흐름", funnel: "단계별 흐름 (퍼널)", wait_by_hour: "시간대별 대기",
    caller_detail: "대기 고객 정보", call_id: "통화 ID", state: "상태", for_seconds: "경과",
    supervisor: "관리자", viewer: "열람자", done_ok: "처리되었습니다", sl_note: "{s}초 이내 응답",
    elderly: "고령자", repeat: "반복 통화", normal: "일반", flash: "기준 초과 대기",
    agent_id: "상담원 ID", name: "이름", sure_cancel: "이 예약을 취소할까요?",
    alert_longest_wait: "{where}: {v} 동안 기다린 고객이 있습니다",
    alert_service_level: "{where}: 서비스 수준 {v} ({s}초 이내 응답)",
    alert_abandon_rate: "{where}: 오늘 고객의 {v}가 응대 전에 끊었습니다",
  },
  en: {
    title: "Contact center wallboard", as_of: "As of", reconnecting: "Connection lost — reconnecting",
    login_title: "Wallboard log-in", user: "User name", password: "Password", login: "Log in",
    logout: "Log out", wrong_login: "Wrong user name or password",
    locked: "Too many refused log-ins: try again in {n} s",
    queues: "Queues", queue: "Queue", center: "Center", all_centers: "All centers", waiting: "Waiting",
    by_priority: "By priority", longest_wait: "Longest wait", service_level: "Service level",
    asa: "Avg. speed of answer", abandon_rate: "Abandon rate", answered: "Answered", abandoned: "Abandoned",
    callbacks: "Callbacks", agents: "Agents", available: "Available", ringing: "Ringing", on_call: "On a call",
    wrap_up: "Wrap-up", paused: "Paused", offline: "Logged out", occupancy: "Occupancy",
    waiting_callers: "Callers waiting", priority: "Priority", reason: "Reason", waited: "Waited",
    estimate: "Estimate", number: "Number", via: "Via", voice: "Phone", video: "Video", no_waiting: "Nobody is waiting",
    more: "{n} more waiting", reservations: "Callback reservations", pending: "Pending", due: "Due",
    in_progress: "Dialling", failed: "Failed", done: "Done", due_at: "Due at", cancel: "Cancel",
    no_reservations: "No pending reservations", pause: "Pause", resume: "Resume",
    wellness: "Wellness calls", visits_open: "Home visits due", wellness_ringing: "Calls in progress",
    wellness_paused: "Paused by the inbound surge: {names}",
    logout_agent: "Log out", pause_reason: "Reason for the pause", close: "Close",
    charts_title: "Today's calls", funnel: "Journey funnel", wait_by_hour: "Wait by hour",
    caller_detail: "Waiting caller", call_id: "Call id", state: "State", for_seconds: "For",
    supervisor: "Supervisor", viewer: "Viewer", done_ok: "Done", sl_note: "answered within {s} s",
    elderly: "Elderly", repeat: "Repeat caller", normal: "Normal", flash: "Waiting too long",
    agent_id: "Agent id", name: "Name", sure_cancel: "Cancel this reservation?",
    alert_longest_wait: "{where}: a caller has waited {v}",
    alert_service_level: "{where}: service level {v} (answered within {s} s)",
    alert_abandon_rate: "{where}: {v} of callers hung up unserved today",
  },
};
const STATES = ["available", "ringing", "on_call", "wrap_up", "paused", "offline"];
const RESERVATIONS = ["pending", "due", "in_progress", "failed", "done"];

const $ = (id) => document.getElementById(id);
let lang = localStorage.getItem("wallboard.lang") === "en" ? "en" : "ko";
let me = null;            // {user, role, csrf, actions, reservations, charts}
let snap = null;          // the latest snapshot
let stream = null;
let drawPending = false;
let chartTimer = null;
let openAgent = null;     // the agent id of the open dialog
const perf = { renders: 0, lastMs: 0, maxMs: 0, version: 0 };
window.wallboard = perf;  // read by the browser tests (render count and cost)

function t(key, vars) {
  let s = T[lang][key] ?? T.en[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, v);
  return s;
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function setText(e, s) { if (e.textContent !== s) e.textContent = s; }
function setAttr(e, name, v) { if (v == null) e.removeAttribute(name); else if (e.getAttribute(name) !== v) e.setAttribute(name, v); }
function dur(sec) {
  if (sec == null) return "–";
  const s = Math.max(0, Math.round(sec));
  const m = Math.floor(s / 60), r = s % 60;
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, "0")}:${String(r).padStart(2, "0")}`
                 : `${m}:${String(r).padStart(2, "0")}`;
}
function pct(x) { return x == null ? "–" : `${Math.round(x * 100)}%`; }
function centerName(c) { return c == null ? t("all_centers") : c; }

// -- requests ---------------------------------------------------------------------------------
async function api(path, opts = {}) {
  const init = { method: opts.method || "GET", headers: {}, credentials: "same-origin" };
  if (init.method !== "GET") {
    init.headers["Content-Type"] = "application/json";
    if (me) init.headers["X-CSRF-Token"] = me.csrf;
    init.body = JSON.stringify(opts.body || {});
  }
  const resp = await fetch(path, init);
  let body = null;
  try { body = await resp.json(); } catch (_) { body = null; }
  return { status: resp.status, body, headers: resp.headers };
}
function toast(text) {
  const e = $("toast");
  e.textContent = text;
  e.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { e.hidden = true; }, 3000);
}

// -- log-in -----------------------------------------------------------------------------------
function showLogin() {
  me = null;
  if (stream) { stream.close(); stream = null; }
  clearInterval(chartTimer);
  $("board").hidden = true;
  $("as-of-box").hidden = true;
  $("logout").hidden = true;
  setText($("who"), "");
  $("login").hidden = false;
  $("login-name").focus();
}
async function start() {
  const r = await api("api/me");
  if (r.status !== 200) { showLogin(); return; }
  me = r.body;
  $("login").hidden = true;
  $("board").hidden = false;
  $("as-of-box").hidden = false;
  $("logout").hidden = false;
  document.body.dataset.role = me.role;
  setText($("who"), `${me.user} (${t(me.role)})`);
  follow();
  if (me.charts) { $("charts").hidden = false; loadCharts(); chartTimer = setInterval(loadCharts, CHART_EVERY); }
  if (me.actions && me.reservations) { $("reservation-list").hidden = false; loadReservations(); }
}
$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const button = $("login-submit");
  button.disabled = true;
  try {
    const r = await api("api/login", { method: "POST",
      body: { name: $("login-name").value, password: $("login-password").value } });
    $("login-password").value = "";
    if (r.status === 200) { setText($("login-error"), ""); await start(); return; }
    if (r.status === 429) setText($("login-error"), t("locked", { n: r.headers.get("Retry-After") || "300" }));
    else setText($("login-error"), r.status === 401 ? t("wrong_login") : (r.body && r.body.error) || String(r.status));
  } finally { button.disabled = false; }
});
$("logout").addEventListener("click", async () => { await api("api/logout", { method: "POST" }); showLogin(); });

// -- the live stream --------------------------------------------------------------------------
function follow() {
  if (stream) stream.close();
  stream = new EventSource("api/events");
  stream.addEventListener("snapshot", (ev) => {
    snap = JSON.parse(ev.data);
    $("conn").hidden = true;
    if (!drawPending) { drawPending = true; requestAnimationFrame(draw); }
  });
  stream.addEventListener("ended", () => { showLogin(); });
  stream.onerror = async () => {
    $("conn").hidden = false;
    if (stream && stream.readyState === EventSource.CLOSED) {   // refused (401): log in again
      const r = await api("api/me");
      if (r.status === 401) showLogin(); else setTimeout(follow, 2000);
    }
  };
}
function draw() {
  drawPending = false;
  if (!snap) return;
  const t0 = performance.now();
  render(snap);
  const ms = performance.now() - t0;
  perf.renders += 1; perf.lastMs = ms; perf.maxMs = Math.max(perf.maxMs, ms); perf.asOf = snap.as_of;
}

// -- drawing ----------------------------------------------------------------------------------
const cache = { tiles: new Map(), centerRows: new Map(), agentRows: new Map(), grids: new Map(),
                cells: new Map(), waitRows: [], resFigs: null };

function fig(label) {
  const f = el("div", "fig");
  f.append(el("span", "label", t(label)), el("span", "value", "–"));
  f.dataset.label = label;
  return f;
}
function tileFor(q) {
  let tile = cache.tiles.get(q.queue);
  if (tile) return tile;
  const root = el("div", "tile");
  root.dataset.queue = q.queue;
  const h = el("h3", "", q.queue);
  const figs = el("div", "figs");
  const f = {};
  for (const k of ["waiting", "longest_wait", "service_level", "asa", "abandon_rate"]) { f[k] = fig(k); figs.append(f[k]); }
  const sub = el("div", "sub");
  root.append(h, figs, sub);
  $("queue-tiles").append(root);
  tile = { root, f, sub };
  cache.tiles.set(q.queue, tile);
  return tile;
}
function priorityText(by, priorities) {
  return priorities.map((p) => `${t(p)} ${by[p] ?? 0}`).join(" · ");
}
function setFig(f, text, level) {
  const v = f.lastChild;
  setText(v, text);
  setAttr(v, "data-level", level || null);
}
function renderQueues(s) {
  const seen = new Set();
  const rows = [];
  for (const q of s.queues) {
    if (q.center != null) { rows.push(q); continue; }
    seen.add(q.queue);
    const tile = tileFor(q);
    const lv = q.levels || {};
    setFig(tile.f.waiting, String(q.waiting), q.waiting ? lv.longest_wait : null);
    setFig(tile.f.longest_wait, dur(q.longest_wait), lv.longest_wait);
    setFig(tile.f.service_level, pct(q.service_level), lv.service_level);
    setFig(tile.f.asa, dur(q.asa));
    setFig(tile.f.abandon_rate, pct(q.abandon_rate), lv.abandon_rate);
    setText(tile.sub, `${priorityText(q.waiting_by_priority || {}, s.priorities)}   |   ${t("answered")} ${q.answered} · `
      + `${t("abandoned")} ${q.abandoned} · ${t("callbacks")} ${q.callbacks}   |   `
      + t("sl_note", { s: s.service_level.seconds }));
  }
  for (const [name, tile] of cache.tiles) if (!seen.has(name)) { tile.root.remove(); cache.tiles.delete(name); }
  const table = $("centers-table");
  table.hidden = rows.length === 0;
  const body = table.tBodies[0];
  const keep = new Set();
  rows.forEach((q, i) => {
    const key = `${q.queue}\u0000${q.center}`;
    keep.add(key);
    let tr = cache.centerRows.get(key);
    if (!tr) {
      tr = el("tr");
      for (let c = 0; c < 10; c++) tr.append(el("td"));
      cache.centerRows.set(key, tr);
    }
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    const c = tr.children, lv = q.levels || {};
    setText(c[0], q.queue); setText(c[1], centerName(q.center)); setText(c[2], String(q.waiting));
    setText(c[3], priorityText(q.waiting_by_priority || {}, s.priorities));
    setText(c[4], dur(q.longest_wait)); setAttr(c[4], "data-level", lv.longest_wait);
    setText(c[5], pct(q.service_level)); setAttr(c[5], "data-level", lv.service_level);
    setText(c[6], dur(q.asa));
    setText(c[7], pct(q.abandon_rate)); setAttr(c[7], "data-level", lv.abandon_rate);
    setText(c[8], String(q.answered)); setText(c[9], String(q.abandoned));
  });
  for (const [key, tr] of cache.centerRows) if (!keep.has(key)) { tr.remove(); cache.centerRows.delete(key); }
}
function renderAgents(s) {
  const body = $("agents-table").tBodies[0];
  const keep = new Set();
  s.agents.forEach((a, i) => {
    const key = String(a.center);
    keep.add(key);
    let tr = cache.agentRows.get(key);
    if (!tr) { tr = el("tr"); for (let c = 0; c < 8; c++) tr.append(el("td")); cache.agentRows.set(key, tr); }
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] || null);
    const c = tr.children;
    setText(c[0], a.center == null ? (s.centers.length ? t("all_centers") : t("agents")) : a.center);
    STATES.forEach((st, j) => setText(c[j + 1], String(a[st] ?? 0)));
    const reasons = Object.entries(a.paused_by_reason || {}).map(([r, n]) => `${r} ${n}`).join(", ");
    setAttr(c[5], "title", reasons || null);
    setText(c[7], pct(a.occupancy));
  });
  for (const [key, tr] of cache.agentRows) if (!keep.has(key)) { tr.remove(); cache.agentRows.delete(key); }

  // The grid: one cell per agent, grouped by center, kept and re-classed in place.
  const byCenter = new Map();
  for (const a of s.agent_list) {
    const k = a.center == null ? "" : a.center;
    if (!byCenter.has(k)) byCenter.set(k, []);
    byCenter.get(k).push(a);
  }
  const grids = $("agent-grids");
  const seenIds = new Set();
  for (const [center, list] of byCenter) {
    let g = cache.grids.get(center);
    if (!g) {
      const root = el("div", "grid-center");
      const h = el("h3");
      const grid = el("div", "grid");
      grid.dataset.center = center;
      root.append(h, grid);
      grids.append(root);
      g = { root, h, grid };
      cache.grids.set(center, g);
    }
    setText(g.h, center === "" ? (byCenter.size > 1 ? "–" : "") : center);
    g.grid.classList.toggle("compact", list.length > COMPACT_OVER);
    list.forEach((a, i) => {
      seenIds.add(a.id);
      let cell = cache.cells.get(a.id);
      if (!cell) { cell = el("div"); cell.dataset.id = a.id; cache.cells.set(a.id, cell); }
      if (cell.parentNode !== g.grid || g.grid.children[i] !== cell) g.grid.insertBefore(cell, g.grid.children[i] || null);
      const cls = `cell ${a.state}`;
      if (cell.className !== cls) cell.className = cls;
      setText(cell, a.name);
      setAttr(cell, "title", `${a.name} (${a.id}) — ${t(a.state)}${a.reason ? ": " + a.reason : ""}, ${dur(a.for_seconds)}`);
    });
  }
  for (const [id, cell] of cache.cells) if (!seenIds.has(id)) { cell.remove(); cache.cells.delete(id); }
  for (const [center, g] of cache.grids) if (!byCenter.has(center)) { g.root.remove(); cache.grids.delete(center); }
  if (openAgent) agentDetail(openAgent);
}
function renderWaiting(s) {
  // The server lists the first callers in line, then those behind them who wait long enough
  // to flash, the longest first (wallboard.list_rows each); each row says its place in line, the count is of everyone.
  const list = s.waiting_list;
  const total = s.waiting_total;
  const body = $("waiting-table").tBodies[0];
  const shown = list.length;
  const several = s.centers.length > 0;
  for (const th of document.querySelectorAll(".col-center")) th.hidden = !several;
  while (cache.waitRows.length < shown) {
    const tr = el("tr");
    for (let c = 0; c < 9; c++) tr.append(el("td"));
    tr.children[2].className = "col-center";
    cache.waitRows.push(tr);
    body.append(tr);
  }
  for (let i = 0; i < cache.waitRows.length; i++) {
    const tr = cache.waitRows[i];
    if (i >= shown) { tr.hidden = true; continue; }
    const w = list[i], c = tr.children;
    const place = w.position;
    tr.hidden = false;
    tr.dataset.callId = w.call_id;
    tr.classList.toggle("flash", !!w.flash);
    tr.classList.toggle("gap", i > 0 && place !== list[i - 1].position + 1);
    setAttr(tr, "title", w.flash ? t("flash") : null);
    setText(c[0], String(place)); setText(c[1], w.queue); setText(c[2], w.center || "");
    c[2].hidden = !several;
    setText(c[3], t(w.priority)); setText(c[4], w.reason || ""); setText(c[5], dur(w.waited));
    setText(c[6], dur(w.estimate)); setText(c[7], w.number || "");
    setText(c[8], t(w.channel || "voice")); c[8].className = "via-" + (w.channel || "voice");
  }
  setText($("waiting-count"), String(total));
  $("waiting-none").hidden = total > 0;
  const more = $("waiting-more");
  more.hidden = total <= shown;
  setText(more, t("more", { n: total - shown }));
}
function renderReservations(s) {
  if (!cache.resFigs) {
    cache.resFigs = {};
    for (const k of RESERVATIONS) { cache.resFigs[k] = fig(k); $("reservation-figures").append(cache.resFigs[k]); }
  }
  const r = s.reservations || {};
  for (const k of RESERVATIONS) setFig(cache.resFigs[k], String(r[k] ?? 0), k === "failed" && r[k] ? "alert" : null);
  const key = RESERVATIONS.map((k) => r[k]).join("/");
  if (me && me.actions && me.reservations && key !== cache.resKey) { cache.resKey = key; loadReservations(); }
}
function renderWellness(s) {
  // The wellness dialler's figures (absent when no campaign runs): the visit list's length
  // first, for whoever sends the visitors.
  const w = s.wellness;
  $("wellness").hidden = !w;
  if (!w) return;
  if (!cache.wellFigs) {
    cache.wellFigs = {};
    for (const k of ["visits_open", "wellness_ringing"]) {
      cache.wellFigs[k] = fig(k); $("wellness-figures").append(cache.wellFigs[k]);
    }
  }
  setFig(cache.wellFigs.visits_open, String(w.visits_open ?? 0), w.visits_open ? "alert" : null);
  setFig(cache.wellFigs.wellness_ringing, String(w.ringing ?? 0), null);
  const paused = w.paused || [];
  const p = $("wellness-paused");
  p.hidden = !paused.length;
  setText(p, paused.length ? t("wellness_paused", { names: paused.join(", ") }) : "");
}
function alertText(a, s) {
  // An alert is worded here, in the page's language; its English text is for scripts.
  const key = `alert_${a.kind}`;
  if (!(key in T[lang])) return a.text;
  const where = a.center ? `${a.queue} (${a.center})` : a.queue;
  const v = a.kind === "longest_wait" ? dur(a.value) : pct(a.value);
  return T[lang][key].replace("{where}", where).replace("{v}", v)
    .replace("{s}", String(s.service_level ? s.service_level.seconds : ""));
}
function renderAlerts(s) {
  const ul = $("alerts");
  const items = s.alerts || [];
  while (ul.children.length > items.length) ul.lastChild.remove();
  while (ul.children.length < items.length) ul.append(el("li"));
  items.forEach((a, i) => setText(ul.children[i], alertText(a, s)));
}
function render(s) {
  perf.version = s.as_of;
  const asOf = new Date(s.as_of);
  setText($("as-of"), isNaN(asOf) ? s.as_of : asOf.toLocaleTimeString(lang === "ko" ? "ko-KR" : "en-GB",
    { timeZone: s.timezone, hour12: false }));
  setAttr($("as-of"), "datetime", s.as_of);
  renderAlerts(s);
  renderQueues(s);
  renderAgents(s);
  renderWaiting(s);
  renderReservations(s);
  renderWellness(s);
}

// -- details and actions ----------------------------------------------------------------------
function agentDetail(id) {
  const a = snap && snap.agent_list.find((x) => x.id === id);
  if (!a) return;
  setText($("agent-title"), `${a.name} (${a.id})`);
  setText($("agent-detail"), `${t(a.state)}${a.reason ? ": " + a.reason : ""} · ${t("for_seconds")} ${dur(a.for_seconds)}`
    + (a.center ? ` · ${a.center}` : "") + (a.queue ? ` · ${a.queue}` : ""));
  $("act-pause").disabled = a.state === "offline" || a.state === "paused";
  $("act-resume").disabled = a.state !== "paused";
  $("act-logout").disabled = a.state === "offline";
}
$("agent-grids").addEventListener("click", (ev) => {
  const cell = ev.target.closest(".cell");
  if (!cell) return;
  openAgent = cell.dataset.id;
  setText($("agent-error"), "");
  $("agent-actions").hidden = !(me && me.actions);
  agentDetail(openAgent);
  $("agent-dialog").showModal();
});
$("agent-dialog").addEventListener("close", () => { openAgent = null; });
for (const b of document.querySelectorAll("#agent-actions button")) {
  b.addEventListener("click", async () => {
    const action = b.dataset.action;
    const body = action === "pause" ? { reason: $("pause-reason").value.trim() } : {};
    const r = await api(`api/agents/${encodeURIComponent(openAgent)}/${action}`, { method: "POST", body });
    if (r.status === 200) { $("agent-dialog").close(); toast(`${openAgent || ""} ${t(r.body.state)}`); }
    else if (r.status === 401) showLogin();
    else setText($("agent-error"), (r.body && r.body.error) || String(r.status));
  });
}
$("waiting-table").addEventListener("click", async (ev) => {
  const tr = ev.target.closest("tr[data-call-id]");
  if (!tr) return;
  const r = await api(`api/callers/${encodeURIComponent(tr.dataset.callId)}`);
  const dl = $("caller-fields");
  dl.replaceChildren();
  setText($("caller-error"), r.status === 200 ? "" : (r.body && r.body.error) || String(r.status));
  if (r.status === 200) {
    const w = r.body;
    const rows = [["number", w.number], ["queue", w.queue], ["center", w.center], ["priority", t(w.priority)],
                  ["reason", w.reason], ["waited", dur(w.waited)], ["estimate", dur(w.estimate)], ["call_id", w.call_id]];
    for (const [k, v] of rows) {
      if (v == null || v === "") continue;
      const dd = el("dd", "", String(v));
      dd.id = `caller-${k}`;
      dl.append(el("dt", "", t(k)), dd);
    }
  }
  $("caller-dialog").showModal();
});
async function loadReservations() {
  const r = await api("api/reservations");
  if (r.status !== 200) return;
  const body = $("reservation-list").querySelector("tbody");
  body.replaceChildren();
  for (const res of r.body) {
    const tr = el("tr");
    const due = new Date(res.due_at);
    tr.append(el("td", "", res.number), el("td", "", res.queue),
              el("td", "", isNaN(due) ? res.due_at : due.toLocaleString(lang === "ko" ? "ko-KR" : "en-GB",
                { timeZone: snap ? snap.timezone : undefined, hour12: false })));
    const cell = el("td");
    const b = el("button", "", t("cancel"));
    b.type = "button";
    b.dataset.reservation = res.id;
    b.addEventListener("click", async () => {
      if (!confirm(t("sure_cancel"))) return;
      const c = await api(`api/reservations/${encodeURIComponent(res.id)}/cancel`, { method: "POST" });
      toast(c.status === 200 ? t("done_ok") : (c.body && c.body.error) || String(c.status));
      loadReservations();
    });
    cell.append(b);
    tr.append(cell);
    body.append(tr);
  }
  $("reservation-list").querySelector(".none").hidden = r.body.length > 0;
}
function loadCharts() {
  for (const name of ["funnel", "wait_by_hour"]) {
    const img = $(`chart-${name}`);
    img.onerror = () => { img.closest("figure").hidden = true; };
    img.onload = () => { img.closest("figure").hidden = false; };
    img.alt = t(name);
    img.src = `api/charts/${name}.svg?t=${Date.now()}`;
  }
}

// -- language ---------------------------------------------------------------------------------
function applyLanguage() {
  document.documentElement.lang = lang;
  document.title = t("title");
  for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
  for (const f of document.querySelectorAll(".fig")) setText(f.firstChild, t(f.dataset.label));
  const b = $("lang");
  b.textContent = lang === "ko" ? "English" : "한국어";
  b.lang = lang === "ko" ? "en" : "ko";
  if (me) setText($("who"), `${me.user} (${t(me.role)})`);
  if (snap) render(snap);
  if (me && me.charts) for (const name of ["funnel", "wait_by_hour"]) $(`chart-${name}`).alt = t(name);
}
$("lang").addEventListener("click", () => {
  lang = lang === "ko" ? "en" : "ko";
  localStorage.setItem("wallboard.lang", lang);
  applyLanguage();
});

applyLanguage();
start();
