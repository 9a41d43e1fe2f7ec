/* asterisk-cube: the phone in the browser (issue #16, docs/webrtc.md).
 *
 * The agent picks the desk phone or the phone in the browser (POST /api/phone: the
 * product then rings the chosen one). The browser phone is a JsSIP user agent (vendored,
 * static/vendor/jssip-*.min.js) that registers the agent's own PJSIP endpoint
 * cube-webrtc-<username> over Asterisk's WebSocket; media is DTLS-SRTP (webrtc=yes).
 * The microphone is asked for once, after a plain explanation. Every string goes
 * through _() like the rest of the desk. */
(function () {
  "use strict";

  var page = window.cubePage("desk-data");
  var _ = page._, $ = page.$, show = page.show;
  var state = page.data.phone;
  if (!state || !state.available || !window.JsSIP) return;

  var ua = null;
  var session = null;
  // a hold or resume sent and not answered yet: JsSIP drops a second one while the first
  // re-INVITE is in flight (isReadyToReOffer), so the button waits for the answer
  var holdPending = false;
  var regState = "off";

  function refusal(body) {
    return (body && body.message) || _("Something went wrong. The error has been logged; try again.");
  }
  function message(text) {
    $("phone-msg").textContent = text || "";
    show($("phone-msg"), !!text);
  }

  // --- registration --------------------------------------------------------------------

  var REG_TEXT = {
    off: function () { return _("Desk phone in use"); },
    wait: function () { return _("Browser phone: connecting…"); },
    ok: function () { return _("Browser phone: registered"); },
    failed: function () { return _("Browser phone: not registered"); },
  };
  function setReg(kind, detail) {
    regState = kind;
    var badge = $("phone-reg");
    badge.dataset.reg = kind;
    badge.textContent = REG_TEXT[kind]() + (detail ? " (" + detail + ")" : "");
  }

  function startUA() {
    if (ua) return;
    var sip = state.sip;
    setReg("wait");
    ua = new window.JsSIP.UA({
      sockets: [new window.JsSIP.WebSocketInterface(sip.ws_url)],
      uri: sip.uri,
      authorization_user: sip.user,
      password: sip.password,
      register: true,
      register_expires: 300,
      session_timers: false,
      user_agent: "asterisk-cube desk",
    });
    ua.on("connecting", function () { if (regState !== "ok") setReg("wait"); });
    ua.on("disconnected", function () { setReg("failed", _("no connection to the phone system, retrying")); });
    ua.on("registered", function () { setReg("ok"); message(""); });
    ua.on("unregistered", function () { if (ua) setReg("wait"); });
    ua.on("registrationFailed", function (e) { setReg("failed", e.cause || ""); });
    ua.on("newRTCSession", function (e) {
      if (e.originator !== "remote") return;
      if (session) {  // one call at a time: the product never offers a second
        e.session.terminate({ status_code: 486 });
        return;
      }
      takeSession(e.session, e.request);
    });
    ua.start();
  }

  function stopUA() {
    if (!ua) return;
    var old = ua;
    ua = null;
    if (session) session.terminate();
    old.stop();  // unregisters, then closes the WebSocket
    setReg("off");
  }

  // --- calls ---------------------------------------------------------------------------

  var CALL_TEXT = {
    ringing: function () { return _("Ringing:"); },
    talking: function () { return _("In call with"); },
    held: function () { return _("On hold:"); },
  };
  function renderCall(kind) {
    show($("phone-call"), !!session);
    if (!session) return;
    $("phone-call-state").textContent = CALL_TEXT[kind]();
    var id = session.remote_identity;
    $("phone-call-peer").textContent = (id && (id.display_name || (id.uri && id.uri.user))) || "";
    show($("phone-answer"), kind === "ringing");
    var live = kind !== "ringing";
    $("phone-mute").disabled = !live;
    $("phone-hold").disabled = !live || holdPending;
    $("phone-hold").setAttribute("aria-busy", String(holdPending));
    Array.prototype.forEach.call(document.querySelectorAll("#phone-keypad .key"), function (b) {
      b.disabled = !live;
    });
    $("phone-mute").setAttribute("aria-pressed", String(live && session.isMuted().audio));
    $("phone-mute").textContent = live && session.isMuted().audio ? _("Unmute") : _("Mute");
    $("phone-hold").setAttribute("aria-pressed", String(kind === "held"));
    $("phone-hold").textContent = kind === "held" ? _("Resume") : _("Hold");
  }

  function takeSession(s, request) {
    session = s;
    s.on("peerconnection", function (e) {
      e.peerconnection.addEventListener("track", function (t) {
        $("phone-audio").srcObject = t.streams[0];
      });
    });
    s.on("confirmed", function () { renderCall("talking"); });
    s.on("hold", function () { renderCall("held"); });
    s.on("unhold", function () { renderCall("talking"); });
    s.on("muted", function () { renderCall(s.isOnHold().local ? "held" : "talking"); });
    s.on("unmuted", function () { renderCall(s.isOnHold().local ? "held" : "talking"); });
    function over() {
      if (session === s) {
        session = null;
        holdPending = false;
      }
      $("phone-audio").srcObject = null;
      renderCall();
    }
    s.on("ended", over);
    s.on("failed", over);
    renderCall("ringing");
    // the dialer's connects ask phones to answer by themselves (Call-Info: answer-after=0)
    var info = (request && request.getHeader("Call-Info")) || "";
    if (/answer-after=0/.test(info)) answer();
  }

  function answer() {
    if (!session || session.isEstablished()) return;
    session.answer({
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: [] },
    });
  }

  $("phone-answer").addEventListener("click", answer);
  $("phone-hangup").addEventListener("click", function () { if (session) session.terminate(); });
  $("phone-mute").addEventListener("click", function () {
    if (!session) return;
    if (session.isMuted().audio) session.unmute({ audio: true });
    else session.mute({ audio: true });
  });
  $("phone-hold").addEventListener("click", function () {
    if (!session || holdPending) return;
    var s = session;
    function answered() {
      if (session !== s) return;
      holdPending = false;
      renderCall(s.isOnHold().local ? "held" : "talking");
    }
    var sent = s.isOnHold().local ? s.unhold({}, answered) : s.hold({}, answered);
    if (sent) {
      holdPending = true;
      renderCall(s.isOnHold().local ? "held" : "talking");
    }
  });
  Array.prototype.forEach.call(document.querySelectorAll("#phone-keypad .key"), function (b) {
    b.addEventListener("click", function () {
      if (session && session.isEstablished()) session.sendDTMF(b.dataset.key);
    });
  });

  // --- choosing the phone, the microphone asked once --------------------------------------

  function micGranted() {
    if (!navigator.permissions || !navigator.permissions.query) return Promise.resolve(false);
    return navigator.permissions.query({ name: "microphone" }).then(
      function (p) { return p.state === "granted"; },
      function () { return false; }
    );
  }

  function askMic() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return Promise.reject(new Error(_("This browser cannot use a microphone here (it needs HTTPS).")));
    }
    return navigator.mediaDevices.getUserMedia({ audio: true }).then(
      function (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); },
      function () {
        throw new Error(_("The microphone was not allowed. Allow it in the browser's site settings to use the phone in the browser."));
      }
    );
  }

  function choose(phone) {
    return page.request("POST", "/api/phone", { phone: phone }, refusal).then(function (data) {
      state = data;
      syncChoice();
      if (data.phone === "browser") startUA();
      else stopUA();
    });
  }

  function syncChoice() {
    $("phone-desk").checked = state.phone !== "browser";
    $("phone-browser").checked = state.phone === "browser";
    $("phone-desk-endpoint").textContent = state.desk_endpoint ? "(" + state.desk_endpoint + ")" : "";
    $("phone-desk").disabled = false;
  }

  function wantBrowser() {
    message("");
    micGranted().then(function (granted) {
      if (granted) return choose("browser").catch(function (err) { message(err.message); syncChoice(); });
      show($("phone-explain"), true);  // the plain explanation, before the browser asks
    });
  }

  $("phone-browser").addEventListener("change", function () { if (this.checked) wantBrowser(); });
  $("phone-desk").addEventListener("change", function () {
    if (!this.checked) return;
    show($("phone-explain"), false);
    message("");
    choose("desk").catch(function (err) { message(err.message); syncChoice(); });
  });
  $("phone-mic-ok").addEventListener("click", function () {
    show($("phone-explain"), false);
    askMic().then(function () { return choose("browser"); }).catch(function (err) {
      message(err.message);
      syncChoice();
    });
  });
  $("phone-mic-cancel").addEventListener("click", function () {
    show($("phone-explain"), false);
    syncChoice();
  });
  window.addEventListener("pagehide", function () { if (ua) ua.stop(); });

  syncChoice();
  setReg("off");
  if (state.phone === "browser") {
    micGranted().then(function (granted) {
      if (granted) startUA();
      else show($("phone-explain"), true);
    });
  }
})();
