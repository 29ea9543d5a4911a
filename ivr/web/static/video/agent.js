// The interpreter's page: log in, register the browser as the agent's video phone (SIP over
// WebSocket), say "ready", answer the video call the engine rings, chat beside the video.
"use strict";

(function () {
  let ua = null, session = null, socket = null, agent = null, offer = null;
  const page = makePage(() => { if (agent) showAgent(agent); });
  const t = page.t;

  async function login(ev) {
    ev.preventDefault();
    $("login-error").textContent = "";
    const resp = await fetch("../api/agent/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: $("login-name").value, password: $("login-password").value }),
    });
    const body = await resp.json();
    if (!resp.ok) { $("login-error").textContent = body.error; return; }
    $("who").textContent = body.sip.name || body.agent;
    $("login").hidden = true; $("desk").hidden = false;
    register(body.sip);
    openSocket();
  }

  function register(sip) {
    const iceServers = (sip.ice_servers || []).map((u) => ({ urls: u }));
    ua = new JsSIP.UA({ sockets: [new JsSIP.WebSocketInterface(sip.websocket)], uri: sip.uri,
                        password: sip.password, register: true, session_timers: false });
    ua.on("registered", () => { $("sip-state").textContent = t("registered"); $("sip-state").dataset.ok = "1"; window.ivrAgent.registered = true; });
    ua.on("unregistered", () => { $("sip-state").textContent = t("unregistered"); delete $("sip-state").dataset.ok; window.ivrAgent.registered = false; });
    ua.on("registrationFailed", () => { $("sip-state").textContent = t("unregistered"); window.ivrAgent.registered = false; });
    ua.on("newRTCSession", (e) => {
      if (e.originator !== "remote") return;
      if (session && !session.isEnded()) { e.session.terminate({ status_code: 486 }); return; }
      session = e.session;
      window.ivrAgent.session = session;
      session.on("ended", callOver);
      session.on("failed", callOver);
      session.on("peerconnection", () => attachMedia(session, $("remote"), $("local")));
      $("incoming").hidden = false;
      $("answer").disabled = false;
      showOffer();
    });
    ua.start();
    window.ivrAgent.answerOptions = { mediaConstraints: { audio: true, video: true }, pcConfig: { iceServers } };
  }

  function openSocket() {
    socket = new WebSocket(socketUrl("../api/agent/socket"));
    socket.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    socket.onclose = () => setTimeout(() => { if (agent) openSocket(); }, 2000);
  }

  function showAgent(a) {
    agent = a;
    $("agent-state").textContent = t("state_" + a.state);
    $("agent-state").dataset.state = a.state;
  }

  function showOffer() {
    const dl = $("incoming-detail"); dl.replaceChildren();
    if (!offer) return;
    const rows = [[t("topic"), offer.topic], [t("sign"), offer.sign_language],
                  [t("page_language"), offer.language], [t("caller"), offer.caller]];
    if (offer.booked) rows.push([t("booked"), "✓"]);
    for (const [k, v] of rows) {
      if (v == null) continue;
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      dl.append(dt, dd);
    }
  }

  function onMessage(m) {
    if (m.type === "agent") showAgent(m);
    else if (m.type === "call" && m.state === "ringing") { offer = m; $("chat-lines").replaceChildren(); showOffer(); }
    else if (m.type === "call" && m.state === "talking") {
      $("incoming").hidden = true; $("videos").hidden = false; $("chat").hidden = false;
      showAgent({ ...agent, state: "on_call" });
    } else if (m.type === "call" && (m.state === "ended" || m.state === "missed")) {
      if (m.state === "missed") $("incoming").hidden = true;
      showAgent({ ...agent, state: m.state === "ended" ? "wrap_up" : agent.state });
    } else if (m.type === "chat") {
      const who = m.from === "agent" ? { cls: "me", name: t("you") }
        : m.from === "caller" ? { cls: "them", name: t("caller") } : { cls: "system", name: t("system") };
      addChat($("chat-lines"), who, m.text, m.at);
    } else if (m.type === "error") $("desk-status").textContent = m.error;
  }

  function callOver() {
    $("incoming").hidden = true; $("videos").hidden = true;
    $("chat").hidden = true;
    session = null;
  }

  const send = (m) => { if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(m)); };
  $("login-form").addEventListener("submit", login);
  $("ready").addEventListener("click", () => send({ type: "ready" }));
  $("pause").addEventListener("click", () => send({ type: "pause" }));
  $("answer").addEventListener("click", () => {
    if (!session) return;
    $("answer").disabled = true;
    session.answer(window.ivrAgent.answerOptions);
  });
  $("hangup").addEventListener("click", () => { if (session && !session.isEnded()) session.terminate(); });
  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("chat-text").value.trim();
    if (text) { send({ type: "chat", text }); $("chat-text").value = ""; }
  });

  window.ivrAgent = { session: null, registered: false,
                      stats: () => videoStats(session && session.connection) };
  page.apply();
})();
