// The video entrance's shared parts: the pages' texts in four languages, and small helpers.
"use strict";

const TEXT = {
  ko: {
    title: "수어 영상 상담", agent_title: "수어 통역사 화면",
    intro: "수어 통역사와 영상으로 상담합니다. 아래에서 고르고 \"영상 통화 시작\"을 누르세요.",
    topic_q: "무엇을 상담하시겠어요?", sign_q: "어떤 수어로 상담하시겠어요?",
    more: "휴대전화 번호, 예약 코드 (선택)",
    number: "휴대전화 번호 (선택: 어르신 우선 연결과 이전 상담 확인에 쓰입니다)",
    code: "예약 코드 (예약하신 분만)", start: "영상 통화 시작",
    choose_both: "상담 내용과 수어를 골라 주세요.",
    nobody: "지금은 상담할 수 있는 수어 통역사가 없습니다. 원하시는 시간에 예약해 주세요.",
    connecting: "연결하고 있습니다…", camera: "카메라와 마이크를 쓸 수 있게 허락해 주세요.",
    next: "다음 순서입니다. 곧 통역사와 연결됩니다.",
    position: (n) => `지금 ${n}번째 순서입니다.`,
    less_than: (m) => `${m}분 안에 연결될 것으로 예상됩니다.`,
    long_wait: "30분 넘게 걸릴 수 있습니다.", no_estimate: "지금은 기다리는 시간을 알 수 없습니다.",
    ringing: "통역사를 연결하고 있습니다…", talking: (a) => `${a} 통역사와 연결되었습니다.`,
    offer_title: "기다리는 시간이 깁니다. 원하시는 시간에 예약하시겠어요?",
    booked_title: "예약되었습니다", booked_code: "예약 코드",
    booked_how: "그 시간에 이 화면을 다시 열고 예약 코드를 넣으면 먼저 연결됩니다.",
    chat: "글로 대화하기", chat_ph: "주소, 번호처럼 글로 쓰기 쉬운 것을 보내세요", send: "보내기",
    hangup: "통화 끝내기", again: "처음으로", you: "나", interpreter: "통역사", system: "안내",
    ended: "통화가 끝났습니다. 이용해 주셔서 감사합니다.", failed: "연결하지 못했습니다. 잠시 후 다시 해 주세요.",
    ended_booked: "예약이 되었고 통화를 마쳤습니다.",
    err_number: "휴대전화 번호를 확인해 주세요: ", err_code: "예약 코드를 확인해 주세요: ",
    err_early: (w, m) => `예약 시간은 ${w}입니다. 그 시간 ${m}분 전부터 들어오실 수 있습니다.`,
    err_past: "예약 시간이 지났습니다.", err_busy: "지금 요청이 많습니다. 1분 뒤에 다시 해 주세요.",
    slot_free: (n) => `${n}자리`,
    agent_id: "상담원 ID", password: "비밀번호", login: "로그인", ready: "상담 받기", pause: "잠시 멈춤",
    incoming: "영상 상담 요청", answer: "받기", topic: "상담 내용", sign: "수어", page_language: "화면 언어",
    caller: "전화번호", booked: "예약 상담", registered: "전화 연결됨", unregistered: "전화 연결 안 됨",
    state_offline: "로그아웃", state_available: "대기 중", state_ringing: "요청 중", state_on_call: "상담 중",
    state_wrap_up: "정리 중", state_paused: "멈춤",
  },
  en: {
    title: "Sign-language video consultation", agent_title: "Interpreter's desk",
    intro: "Talk to a sign-language interpreter by video. Choose below, then press \"Start a video call\".",
    topic_q: "What is it about?", sign_q: "Which sign language?",
    more: "Mobile number, booking code (optional)",
    number: "Mobile number (optional: for seniors' priority and to see your earlier calls)",
    code: "Booking code (only if you booked)", start: "Start a video call",
    choose_both: "Choose what it is about and a sign language.",
    nobody: "No sign-language interpreter is on duty just now. Please book a time.",
    connecting: "Connecting…", camera: "Please allow the camera and microphone.",
    next: "You are next. An interpreter will be with you shortly.",
    position: (n) => `You are ${ordinal(n)} in line.`,
    less_than: (m) => `Less than ${m} minute${m === 1 ? "" : "s"}.`,
    long_wait: "It may take more than 30 minutes.", no_estimate: "The wait cannot be estimated just now.",
    ringing: "Calling an interpreter…", talking: (a) => `You are connected to ${a}.`,
    offer_title: "The wait is long. Would you like to book a time instead?",
    booked_title: "Booked", booked_code: "Booking code",
    booked_how: "At that time, open this page again and enter the code: you will be served first.",
    chat: "Chat", chat_ph: "Type what is easier to write: an address, a number", send: "Send",
    hangup: "End the call", again: "Start again", you: "You", interpreter: "Interpreter", system: "Note",
    ended: "The call has ended. Thank you.", failed: "The call could not be connected. Please try again later.",
    ended_booked: "Your booking is made and the call has ended.",
    err_number: "Please check the mobile number: ", err_code: "Please check the booking code: ",
    err_early: (w, m) => `Your booking is at ${w}. You can come in from ${m} minutes before.`,
    err_past: "The booking's time has passed.", err_busy: "Too many requests just now. Please try again in a minute.",
    slot_free: (n) => `${n} free`,
    agent_id: "Agent ID", password: "Password", login: "Log in", ready: "Ready", pause: "Pause",
    incoming: "Video call", answer: "Answer", topic: "Topic", sign: "Sign language", page_language: "Page language",
    caller: "Number", booked: "Booked consultation", registered: "Phone connected", unregistered: "Phone not connected",
    state_offline: "Logged out", state_available: "Available", state_ringing: "Ringing", state_on_call: "On a call",
    state_wrap_up: "Wrap-up", state_paused: "Paused",
  },
  zh: {
    title: "手语视频咨询", agent_title: "手语翻译员页面",
    intro: "通过视频与手语翻译员咨询。请在下面选择，然后按“开始视频通话”。",
    topic_q: "您想咨询什么？", sign_q: "使用哪种手语？",
    more: "手机号码、预约码（可选）",
    number: "手机号码（可选：用于老年人优先接通和查看以前的咨询）",
    code: "预约码（仅限已预约者）", start: "开始视频通话",
    choose_both: "请选择咨询内容和手语。",
    nobody: "目前没有可以咨询的手语翻译员。请预约时间。",
    connecting: "正在连接…", camera: "请允许使用摄像头和麦克风。",
    next: "下一位就是您，翻译员马上接通。",
    position: (n) => `您现在排第${n}位。`,
    less_than: (m) => `预计${m}分钟内接通。`,
    long_wait: "可能需要30分钟以上。", no_estimate: "目前无法估计等待时间。",
    ringing: "正在呼叫翻译员…", talking: (a) => `已与翻译员${a}接通。`,
    offer_title: "等待时间较长。要预约其他时间吗？",
    booked_title: "已预约", booked_code: "预约码",
    booked_how: "请在预约时间再次打开此页面并输入预约码，您将优先接通。",
    chat: "文字聊天", chat_ph: "地址、号码等更容易用文字表达的内容", send: "发送",
    hangup: "结束通话", again: "重新开始", you: "我", interpreter: "翻译员", system: "提示",
    ended: "通话已结束。谢谢。", failed: "无法接通，请稍后再试。",
    ended_booked: "已预约，通话已结束。",
    err_number: "请检查手机号码：", err_code: "请检查预约码：",
    err_early: (w, m) => `您的预约时间是${w}，可提前${m}分钟进入。`,
    err_past: "预约时间已过。", err_busy: "请求过多，请一分钟后再试。",
    slot_free: (n) => `剩${n}个`,
    agent_id: "坐席ID", password: "密码", login: "登录", ready: "接听咨询", pause: "暂停",
    incoming: "视频咨询请求", answer: "接听", topic: "咨询内容", sign: "手语", page_language: "页面语言",
    caller: "号码", booked: "预约咨询", registered: "电话已连接", unregistered: "电话未连接",
    state_offline: "已退出", state_available: "空闲", state_ringing: "振铃", state_on_call: "通话中",
    state_wrap_up: "整理中", state_paused: "暂停",
  },
  vi: {
    title: "Tư vấn video bằng ngôn ngữ ký hiệu", agent_title: "Màn hình phiên dịch viên",
    intro: "Nói chuyện với phiên dịch viên ngôn ngữ ký hiệu qua video. Hãy chọn bên dưới rồi bấm \"Bắt đầu gọi video\".",
    topic_q: "Bạn cần tư vấn về việc gì?", sign_q: "Ngôn ngữ ký hiệu nào?",
    more: "Số điện thoại, mã đặt lịch (không bắt buộc)",
    number: "Số điện thoại di động (không bắt buộc: ưu tiên người cao tuổi và xem các cuộc gọi trước)",
    code: "Mã đặt lịch (chỉ khi đã đặt)", start: "Bắt đầu gọi video",
    choose_both: "Hãy chọn nội dung tư vấn và ngôn ngữ ký hiệu.",
    nobody: "Hiện không có phiên dịch viên ngôn ngữ ký hiệu. Vui lòng đặt lịch.",
    connecting: "Đang kết nối…", camera: "Hãy cho phép dùng camera và micrô.",
    next: "Đến lượt bạn tiếp theo. Phiên dịch viên sẽ kết nối ngay.",
    position: (n) => `Bạn đang ở vị trí thứ ${n}.`,
    less_than: (m) => `Dưới ${m} phút.`,
    long_wait: "Có thể mất hơn 30 phút.", no_estimate: "Hiện chưa thể ước tính thời gian chờ.",
    ringing: "Đang gọi phiên dịch viên…", talking: (a) => `Bạn đã được kết nối với ${a}.`,
    offer_title: "Thời gian chờ lâu. Bạn có muốn đặt lịch vào giờ khác không?",
    booked_title: "Đã đặt lịch", booked_code: "Mã đặt lịch",
    booked_how: "Đến giờ đó, hãy mở lại trang này và nhập mã: bạn sẽ được phục vụ trước.",
    chat: "Trò chuyện bằng chữ", chat_ph: "Gõ những gì dễ viết hơn: địa chỉ, số", send: "Gửi",
    hangup: "Kết thúc cuộc gọi", again: "Bắt đầu lại", you: "Bạn", interpreter: "Phiên dịch viên", system: "Thông báo",
    ended: "Cuộc gọi đã kết thúc. Cảm ơn bạn.", failed: "Không kết nối được. Vui lòng thử lại sau.",
    ended_booked: "Đã đặt lịch và cuộc gọi đã kết thúc.",
    err_number: "Hãy kiểm tra số điện thoại: ", err_code: "Hãy kiểm tra mã đặt lịch: ",
    err_early: (w, m) => `Lịch của bạn lúc ${w}. Bạn có thể vào từ ${m} phút trước.`,
    err_past: "Đã quá giờ đặt lịch.", err_busy: "Đang có quá nhiều yêu cầu. Vui lòng thử lại sau một phút.",
    slot_free: (n) => `còn ${n}`,
    agent_id: "Mã nhân viên", password: "Mật khẩu", login: "Đăng nhập", ready: "Sẵn sàng", pause: "Tạm dừng",
    incoming: "Cuộc gọi video", answer: "Trả lời", topic: "Nội dung", sign: "Ngôn ngữ ký hiệu", page_language: "Ngôn ngữ trang",
    caller: "Số", booked: "Tư vấn đã đặt", registered: "Điện thoại đã kết nối", unregistered: "Điện thoại chưa kết nối",
    state_offline: "Đã đăng xuất", state_available: "Sẵn sàng", state_ringing: "Đang đổ chuông", state_on_call: "Đang gọi",
    state_wrap_up: "Hoàn tất", state_paused: "Tạm dừng",
  },
};
const LANGUAGE_NAMES = { ko: "한국어", en: "English", zh: "中文", vi: "Tiếng Việt" };

function ordinal(n) {
  const s = ["th", "st", "nd", "rd"], v = n % 100;
  const words = { 1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth" };
  return words[n] || n + (s[(v - 20) % 10] || s[v] || s[0]);
}

const $ = (id) => document.getElementById(id);

function makePage(onLanguage) {
  let lang = localStorage.getItem("ivr.video.lang") || "ko";
  if (!TEXT[lang]) lang = "ko";
  const t = (key, ...args) => {
    const v = TEXT[lang][key] ?? TEXT.en[key] ?? key;
    return typeof v === "function" ? v(...args) : v;
  };
  function apply() {
    document.documentElement.lang = lang;
    for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
    for (const el of document.querySelectorAll("[data-t-placeholder]")) el.placeholder = t(el.dataset.tPlaceholder);
    document.title = t(document.body.classList.contains("agent") ? "agent_title" : "title");
    for (const b of document.querySelectorAll("#languages button")) b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
    if (onLanguage) onLanguage(lang);
  }
  const nav = $("languages");
  for (const code of Object.keys(TEXT)) {
    const b = document.createElement("button");
    b.type = "button"; b.dataset.lang = code; b.lang = code; b.textContent = LANGUAGE_NAMES[code];
    b.addEventListener("click", () => { lang = code; localStorage.setItem("ivr.video.lang", code); apply(); });
    nav.appendChild(b);
  }
  return { t, apply, get lang() { return lang; } };
}

function socketUrl(path) {
  const u = new URL(path, location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

function addChat(list, who, text, at) {
  const li = document.createElement("li");
  li.className = "from-" + who.cls;
  const name = document.createElement("b"); name.textContent = who.name;
  const body = document.createElement("span"); body.textContent = text;
  const time = document.createElement("time");
  const when = at ? new Date(at) : new Date();
  time.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  li.append(name, " ", body, " ", time);
  list.appendChild(li);
  li.scrollIntoView({ block: "nearest" });
}

// RTP counters of a call's connection, for the page's own use and for tests.
async function videoStats(pc) {
  const out = { inbound: 0, outbound: 0, framesDecoded: 0, framesEncoded: 0, audioIn: 0 };
  if (!pc) return out;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") { out.inbound += s.packetsReceived || 0; out.framesDecoded += s.framesDecoded || 0; }
    if (s.type === "outbound-rtp" && s.kind === "video") { out.outbound += s.packetsSent || 0; out.framesEncoded += s.framesEncoded || 0; }
    if (s.type === "inbound-rtp" && s.kind === "audio") out.audioIn += s.packetsReceived || 0;
  });
  return out;
}

function attachMedia(session, remote, local) {
  const pc = session.connection;
  const show = () => {
    const streams = pc.getReceivers().map((r) => r.track).filter(Boolean);
    if (streams.length) remote.srcObject = new MediaStream(streams);
    const mine = pc.getSenders().map((s) => s.track).filter(Boolean);
    if (mine.length) local.srcObject = new MediaStream(mine);
  };
  pc.addEventListener("track", show);
  session.on("confirmed", show);
  show();
}
