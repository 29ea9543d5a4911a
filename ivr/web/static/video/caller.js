// The caller's page: choose with large buttons, then a WebRTC video call through Asterisk;
// while waiting, the place in line and the expected wait as text, a booking offer when the
// wait is long, and a text chat beside the video.
"use strict";

(function () {
  let settings = null, choice = { topic: null, sign: null }, visit = null;
  let ua = null, session = null, socket = null, lastStatus = null, ended = false;
  const page = makePage(() => { renderChoices(); showStatus(lastStatus); });
  const t = page.t;

  function button(container, item, key) {
    const b = document.createElement("button");
    b.type = "button"; b.className = "choice big"; b.dataset.id = item.id;
    b.setAttribute("role", "radio");
    b.setAttribute("aria-checked", String(choice[key] === item.id));
    b.textContent = item.labels[page.lang] || item.labels.en || item.id;
    b.addEventListener("click", () => { choice[key] = item.id; renderChoices(); });
    container.appendChild(b);
  }

  function renderChoices() {
    if (!settings) return;
    $("topics").replaceChildren(); $("signs").replaceChildren();
    for (const topic of settings.topics) button($("topics"), topic, "topic");
    for (const sign of settings.sign_languages) button($("signs"), sign, "sign");
  }

  function localTime(iso) {
    return new Date(iso).toLocaleString([], { month: "numeric", day: "numeric", weekday: "short",
                                              hour: "2-digit", minute: "2-digit" });
  }

  function refusal(body) {
    const why = body.reason;
    if (why === "number") return t("err_number") + body.error;
    if (why === "code") return t("err_code") + body.error;
    if (why === "early") return t("err_early", localTime(body.slot_start), settings ? settings.early_minutes : 10);
    if (why === "past" || why === "cancelled") return t("err_past");
    if (why === "busy") return t("err_busy");
    return body.error || t("failed");
  }

  async function start() {
    $("choose-error").textContent = "";
    if (!choice.topic || !choice.sign) { $("choose-error").textContent = t("choose_both"); return; }
    $("start").disabled = true;
    try {
      const resp = await fetch("api/visits", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ topic: choice.topic, sign_language: choice.sign, language: page.lang,
                               number: $("number").value, code: $("code").value }),
      });
      const body = await resp.json();
      if (!resp.ok) { $("choose-error").textContent = refusal(body); return; }
      visit = body;
      openSocket();
      if (body.on_duty === 0) { noInterpreter(); return; }
      await place(body.sip);
    } catch (e) {
      $("choose-error").textContent = t("failed");
      console.error(e);
    } finally {
      $("start").disabled = false;
    }
  }

  function openSocket() {
    socket = new WebSocket(socketUrl(`api/visits/${visit.token}/socket`));
    // The engine sends the chat so far on every (re)connection: the list starts again from it.
    socket.onopen = () => $("chat-lines").replaceChildren();
    socket.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    socket.onclose = () => { if (!ended) setTimeout(() => { if (!ended && visit) openSocket(); }, 2000); };
  }

  async function place(sip) {
    $("choose").hidden = true; $("call").hidden = false; $("ended").hidden = true;
    $("status").textContent = t("connecting");
    const iceServers = (sip.ice_servers || []).map((u) => ({ urls: u }));
    ua = new JsSIP.UA({ sockets: [new JsSIP.WebSocketInterface(sip.websocket)], uri: sip.uri,
                        password: sip.password, register: false, session_timers: false });
    ua.start();
    session = ua.call(sip.target, {
      extraHeaders: sip.headers,
      mediaConstraints: { audio: true, video: true },
      pcConfig: { iceServers },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: true },
    });
    window.ivrVideo.session = session;
    attachMedia(session, $("remote"), $("local"));
    session.on("failed", (e) => finish(e.cause === "User Denied Media Access" ? t("camera") : t("failed")));
    session.on("ended", () => finish(null));
  }

  function noInterpreter() {
    // Nobody could take a call now: no call is placed; the page offers a booked time.
    $("choose").hidden = true; $("call").hidden = false;
    document.querySelector("#call .videos").hidden = true;
    document.querySelector("#call .chat").hidden = true;
    $("status").textContent = t("nobody");
    lastStatus = { state: "waiting", offer_booking: true, position: 0 };
    const ask = () => askSlots();
    if (socket.readyState === WebSocket.OPEN) ask(); else socket.addEventListener("open", ask, { once: true });
  }

  function showStatus(s) {
    lastStatus = s;
    if (!s) return;
    let text = "";
    if (s.state === "waiting") {
      text = s.position === 1 ? t("next") : t("position", s.position);
      if (s.position > 1) {
        text += " " + (s.minutes == null ? t("no_estimate") : s.minutes === 0 ? t("long_wait") : t("less_than", s.minutes));
      }
      if (s.offer_booking && $("booked").hidden && $("offer").hidden) askSlots();
    } else if (s.state === "ringing") {
      text = t("ringing"); $("offer").hidden = true;
    } else if (s.state === "talking") {
      text = t("talking", s.agent || t("interpreter")); $("offer").hidden = true;
    }
    $("status").textContent = text;
  }

  function askSlots() {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "slots" }));
  }

  function showSlots(slots) {
    const box = $("slots"); box.replaceChildren();
    if (!slots.length || lastStatus?.state !== "waiting") { $("offer").hidden = true; return; }
    for (const slot of slots) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "choice"; b.dataset.start = slot.start;
      b.textContent = `${localTime(slot.start)} (${t("slot_free", slot.free)})`;
      b.addEventListener("click", () => socket.send(JSON.stringify({ type: "book", start: slot.start })));
      box.appendChild(b);
    }
    $("offer").hidden = false;
  }

  function onMessage(m) {
    if (m.type === "status") showStatus(m);
    else if (m.type === "caption") $("caption").textContent = m.text;
    else if (m.type === "slots") showSlots(m.slots);
    else if (m.type === "booked") {
      $("offer").hidden = true; $("booked").hidden = false;
      $("booked-code").textContent = m.code;
      $("booked-when").textContent = localTime(m.slot_start);
      window.ivrVideo.booked = m;
    } else if (m.type === "chat") {
      const who = m.from === "caller" ? { cls: "me", name: t("you") }
        : m.from === "agent" ? { cls: "them", name: t("interpreter") } : { cls: "system", name: t("system") };
      addChat($("chat-lines"), who, m.text, m.at);
    } else if (m.type === "call" && m.state === "ended") {
      window.ivrVideo.outcome = m.outcome;
      finish(m.outcome === "callback_booked" ? t("ended_booked") : null);
    } else if (m.type === "error") {
      $("caption").textContent = m.error;
    }
  }

  function finish(text) {
    if (ended) { if (text) $("ended-text").textContent = text; return; }
    ended = true;
    try { if (session && !session.isEnded()) session.terminate(); } catch (e) { /* already gone */ }
    try { if (ua) ua.stop(); } catch (e) { /* already stopped */ }
    $("ended").hidden = false;
    $("ended-text").textContent = text || (window.ivrVideo.booked ? t("ended_booked") : t("ended"));
    $("hangup").disabled = true;
    setTimeout(() => { if (socket) socket.close(); }, 3000);
  }

  $("start").addEventListener("click", start);
  $("hangup").addEventListener("click", () => finish(null));
  $("again").addEventListener("click", () => location.reload());
  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("chat-text").value.trim();
    if (text && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "chat", text }));
      $("chat-text").value = "";
    }
  });

  window.ivrVideo = { session: null, stats: () => videoStats(session && session.connection) };
  page.apply();
  fetch("api/settings").then((r) => r.json()).then((s) => { settings = s; renderChoices(); });
})();
