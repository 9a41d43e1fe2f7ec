/* asterisk-cube agent desktop: renders the AgentView pushed over SSE, sends actions to
 * the JSON API. No framework, no build step. Every user-facing string goes through _()
 * (extracted by pybabel, translated from the catalog the page embeds). */
(function () {
  "use strict";

  var page = window.cubePage("desk-data");
  var DATA = page.data;
  var _ = page._, fmt = page.fmt, word = page.word, $ = page.$, el = page.el, show = page.show;
  var flash = page.flash, quietly = page.quietly;

  function clock(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return d.toLocaleTimeString(page.locale, { hour: "2-digit", minute: "2-digit" });
  }
  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    var m = Math.floor(seconds / 60);
    var s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  var view = DATA.view;
  var renderedCallKey = null;
  var linesDialogMode = null; // "start" | "change"

  // --- talking to the server -------------------------------------------------------

  function refusalText(body) {
    if (!body) return _("Something went wrong. The error has been logged; try again.");
    var text = body.message || word("reasons", body.error);
    if (body.detail && body.error === "invalid" && text.indexOf(body.detail) < 0) text += " (" + body.detail + ")";
    return text;
  }

  function api(method, path, body) {
    return page.request(method, path, body, refusalText).then(function (data) {
      if (data && data.view) render(data.view);
      return data;
    });
  }

  function act(path, body, target) {
    return api("POST", path, body).catch(function (err) {
      if (err.message === "login") return;
      if (target) {
        target.textContent = err.message;
        show(target, true);
      } else {
        flash(err.message);
      }
      throw err;
    });
  }

  // A form whose refusals may name one of its fields: `fields` maps the server's field name
  // to [input id, label]. The message then starts with the field's label, and the field is
  // marked invalid and focused.
  function clearInvalid(fields) {
    Object.keys(fields).forEach(function (k) { $(fields[k][0]).removeAttribute("aria-invalid"); });
  }
  function showRefusal(err, fields, box) {
    if (err.message === "login") return;
    var text = err.message;
    var field = err.body && err.body.field && fields[err.body.field];
    if (field) {
      var prefix = err.body.field + ": ";
      text = field[1] + ": " + (text.indexOf(prefix) === 0 ? text.slice(prefix.length) : text);
      $(field[0]).setAttribute("aria-invalid", "true");
      $(field[0]).focus();
    }
    box.textContent = text;
    show(box, true);
  }

  // --- push --------------------------------------------------------------------------

  var source = null;
  function connect() {
    source = new EventSource("/desk/events");
    source.addEventListener("open", function () { show($("conn-lost"), false); });
    source.addEventListener("view", function (e) {
      show($("conn-lost"), false);
      render(JSON.parse(e.data));
    });
    // only one line's queue changed: update its count, keep the rest of the view
    source.addEventListener("count", function (e) {
      var c = JSON.parse(e.data);
      if (!view) return;
      (view.lines || []).forEach(function (line) {
        if (line.line_id === c.line_id) {
          line.waiting = c.waiting;
          line.longest_wait_s = c.longest_wait_s;
        }
      });
      renderLines(view);
    });
    source.addEventListener("refused", function (e) {
      var body = JSON.parse(e.data);
      if (body.error === "login_required") {
        // the session ended (logout elsewhere, new password, deactivated)
        source.close();
        window.location.href = "/login";
        return;
      }
      flash(refusalText(body));
    });
    source.addEventListener("error", function () {
      show($("conn-lost"), true);
      if (source.readyState === EventSource.CLOSED) {
        // the server answered with an error (e.g. the session ended): find out why
        source = null;
        api("GET", "/api/me").then(function (v) {
          render(v);
          setTimeout(connect, 2000);
        }, function () {
          setTimeout(connect, 5000);
        });
      }
    });
  }

  // --- sound and notifications -------------------------------------------------------

  var audio = null;
  var ringTimer = null;
  function unlockAudio() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audio) audio = new Ctx();
    if (audio.state === "suspended") audio.resume();
  }
  document.addEventListener("pointerdown", unlockAudio);
  document.addEventListener("keydown", unlockAudio);

  function ringOnce() {
    if (!audio || audio.state !== "running") return;
    var t = audio.currentTime;
    [0, 0.5].forEach(function (offset) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "sine";
      osc.frequency.value = offset ? 660 : 880;
      gain.gain.setValueAtTime(0.0001, t + offset);
      gain.gain.exponentialRampToValueAtTime(0.25, t + offset + 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + offset + 0.4);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + offset);
      osc.stop(t + offset + 0.45);
    });
  }
  function startRinging() {
    if (ringTimer) return;
    ringOnce();
    ringTimer = setInterval(ringOnce, 2500);
  }
  function stopRinging() {
    if (ringTimer) clearInterval(ringTimer);
    ringTimer = null;
  }

  var notifiedOffer = null;
  var notification = null;
  function notifyOffer(offer) {
    if (notifiedOffer === offer.call_id) return;
    notifiedOffer = offer.call_id;
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    try {
      notification = new Notification(_("Incoming call"), {
        body: fmt(_("%(caller)s on %(line)s"), { caller: offer.caller, line: offer.line }),
        tag: "cube-offer-" + offer.call_id,
        requireInteraction: true,
      });
      notification.onclick = function () {
        window.focus();
        notification.close();
      };
    } catch (e) {
      /* some browsers allow notifications only from a service worker */
    }
  }
  function closeNotification() {
    if (notification) notification.close();
    notification = null;
  }
  function setupNotifyButton() {
    var btn = $("notify-btn");
    var askable = "Notification" in window && Notification.permission === "default";
    show(btn, askable);
    btn.addEventListener("click", function () {
      Notification.requestPermission().then(function () { show(btn, false); });
    });
  }

  // --- rendering -----------------------------------------------------------------------

  function render(v) {
    if (!v) return;
    view = v;
    renderStatus(v);
    renderLines(v);
    renderMissed(v);
    renderOffer(v);
    renderCall(v);
    renderScript(v);
    renderIdle(v);
    noticeCall(v.call);
    tick();
    if (!render.started) {
      render.started = true; // at the start of work, ask for the lines once
      if (v.state === "logged_out") openLinesDialog("start");
    }
  }

  function renderStatus(v) {
    var badge = $("state-badge");
    badge.textContent = word("states", v.state);
    badge.setAttribute("data-state", v.state);
    var text = word("states", v.state);
    if (v.state === "paused" && v.pause_reason) {
      text += " – " + pauseLabel(v.pause_reason);
    }
    $("state-text").textContent = text;
    show($("blocked-note"), !!v.blocked);
    show($("wrapup-box"), v.state === "wrap_up");
    var loggedIn = v.state !== "logged_out";
    show($("ready-btn"), v.state === "paused");
    show($("pause-requested"), !!v.pause_requested);
    if (v.pause_requested) {
      $("pause-requested-text").textContent = fmt(_("Pause after the call: %(reason)s"), {
        reason: pauseLabel(v.pause_requested),
      });
    }
    show($("pause-form"), loggedIn && v.state !== "offered" && !v.pause_requested);
    show($("start-btn"), !loggedIn);
    show($("end-btn"), loggedIn && !v.offer && !v.call && v.state !== "busy");
    var select = $("pause-reason");
    var want = (v.pause_reasons || []).map(function (p) { return p[0]; }).join("|");
    if (select.getAttribute("data-codes") !== want) {
      select.textContent = "";
      (v.pause_reasons || []).forEach(function (p) {
        select.appendChild(el("option", { value: p[0], text: pauseLabel(p[0], p[1]) }));
      });
      select.setAttribute("data-codes", want);
    }
  }

  function pauseLabel(code, label) {
    if (page.words.pause && page.words.pause[code]) return page.words.pause[code];
    if (label) return label;
    var found = (view.pause_reasons || []).filter(function (p) { return p[0] === code; })[0];
    return found ? found[1] : code;
  }

  function renderLines(v) {
    var body = $("lines-body");
    body.textContent = "";
    (v.lines || []).forEach(function (line) {
      var waiting = el("span", { class: "count" + (line.waiting ? " hot" : "") + (line.waiting && v.blocked ? " blink" : ""), text: String(line.waiting) });
      var row = el("tr", { class: line.chosen ? "chosen" : "not-chosen", "data-line": line.line_id }, [
        el("td", {}, [
          el("span", { class: "line-name", text: line.name }),
          el("span", { class: "muted small", text: " " + line.did }),
          line.chosen ? el("span", { class: "tag", text: _("Serving") }) : el("span"),
        ]),
        el("td", { class: "num" }, [waiting]),
        el("td", { class: "num", text: line.waiting ? duration(line.longest_wait_s) : "–" }),
      ]);
      body.appendChild(row);
    });
    if (!(v.lines || []).length) {
      body.appendChild(el("tr", {}, [el("td", { colspan: "3", class: "muted", text: _("You have no lines. Ask an administrator for access.") })]));
    }
  }

  function renderMissed(v) {
    var list = $("missed-list");
    list.textContent = "";
    var missed = v.missed || [];
    show($("no-missed"), !missed.length);
    missed.forEach(function (m) {
      list.appendChild(el("li", { "data-missed": m.missed_id }, [
        el("div", {}, [
          el("strong", { text: m.caller }),
          el("span", { class: "muted small", text: " " + m.line + " · " + clock(m.missed_at) }),
        ]),
        el("div", { class: "row" }, [
          el("button", { type: "button", class: "small-btn primary", text: _("Call back"), onclick: function () {
            quietly(act("/api/missed/" + m.missed_id + "/callback"));
          } }),
          el("button", { type: "button", class: "small-btn ghost", text: _("Mark processed"), onclick: function () {
            quietly(act("/api/missed/" + m.missed_id + "/processed"));
          } }),
        ]),
      ]));
    });
  }

  function renderOffer(v) {
    var offer = v.offer;
    show($("offer-card"), !!offer);
    document.body.classList.toggle("offering", !!offer);
    if (!offer) {
      stopRinging();
      closeNotification();
      notifiedOffer = null;
      document.title = _("Agent desktop") + " · asterisk-cube";
      return;
    }
    $("offer-line").textContent = offer.line;
    $("offer-did").textContent = offer.did;
    $("offer-caller").textContent = offer.caller || _("Unknown number");
    $("offer-kind").textContent = word("kinds", offer.kind);
    $("offer-comment").textContent = offer.comment || "";
    show($("offer-comment"), !!offer.comment);
    document.title = "☎ " + _("Incoming call") + " · " + (offer.caller || "");
    startRinging();
    notifyOffer(offer);
  }

  function callKey(call) {
    return call.call_id + ":" + (call.categories || []).map(function (c) {
      return c.category_id + "=" + c.topics.map(function (t) { return t.topic_id; }).join(",");
    }).join(";");
  }

  function renderCall(v) {
    var call = v.call;
    show($("call-card"), !!call);
    renderCallbackForm(call);
    if (!call) {
      renderedCallKey = null;
      return;
    }
    $("call-state").textContent = word("call_states", call.state);
    $("call-state").setAttribute("data-state", call.state);
    $("call-did").textContent = call.did;
    $("call-line").textContent = call.line;
    $("call-caller").textContent = call.caller || _("Unknown number");
    $("call-kind").textContent = word("kinds", call.kind);
    $("call-campaign").textContent = call.campaign || "";
    show($("call-campaign"), !!call.campaign);
    show($("call-campaign-label"), !!call.campaign);
    show($("hangup-btn"), call.state !== "ended");
    // on-demand recording (issue #17); the server refuses it where the line does not record
    var recordBtn = $("record-btn");
    show(recordBtn, call.state === "connected");
    if (recordBtn.getAttribute("data-call") !== String(call.call_id)) {
      recordBtn.setAttribute("data-call", String(call.call_id));
      recordBtn.disabled = false;
      recordBtn.textContent = _("Record");
    }

    // contacts of the screen pop
    var list = $("contact-list");
    list.textContent = "";
    var contacts = call.contacts || [];
    show($("no-contacts"), !contacts.length);
    contacts.forEach(function (c) { list.appendChild(contactItem(c, call)); });

    var key = callKey(call);
    if (key !== renderedCallKey) {
      // a new call (or new categories): build the form afresh
      renderedCallKey = key;
      buildEnquiry(call);
      $("search-results").textContent = "";
      $("contact-q").value = "";
      $("cn-phone").value = call.caller || "";
      ["cn-name", "cn-company", "cn-email"].forEach(function (id) { $(id).value = ""; });
      $("contact-new").open = !contacts.length;
      show($("call-msg"), false);
    }
    // an answering-service call without categories: the call note is its registration
    var noteOnly = !!call.client_id && !(call.categories || []).length;
    show($("enquiry-heading"), !noteOnly);
    show($("enquiry-form"), !noteOnly);
    show($("registered-mark"), !!call.registered);
    show($("forced-note"), call.registration_required && !call.registered);
    $("close-btn").classList.toggle("blocked", call.registration_required && !call.registered);
    show($("close-btn"), call.state === "ended");
  }

  function contactItem(c, call) {
    var opened = call && call.contact_id === c.contact_id;
    var details = [c.phone, c.company, c.email, c.campaign].filter(Boolean).join(" · ");
    return el("li", { class: opened ? "opened" : "", "data-contact": c.contact_id }, [
      el("div", {}, [
        el("strong", { text: c.name || _("(no name)") }),
        el("span", { class: "muted small", text: " " + details }),
      ]),
      opened
        ? el("span", { class: "ok", text: "✔ " + _("Opened") })
        : el("button", { type: "button", class: "small-btn", text: _("Open"), onclick: function () {
            quietly(act("/api/calls/" + view.call.call_id + "/contact", { contact_id: c.contact_id }, $("call-msg")));
          } }),
    ]);
  }

  function buildEnquiry(call) {
    var box = $("enquiry-categories");
    box.textContent = "";
    (call.categories || []).forEach(function (cat) {
      var fs = el("fieldset", { class: "category", "data-category": cat.category_id }, [
        el("legend", {}, [
          cat.name,
          el("span", { class: "muted small", text: " " + (cat.multi ? _("(choose any)") : _("(choose one)")) }),
        ]),
      ]);
      cat.topics.forEach(function (t) {
        var id = "topic-" + t.topic_id;
        fs.appendChild(el("label", { class: "choice", for: id }, [
          el("input", {
            type: cat.multi ? "checkbox" : "radio",
            name: "cat-" + cat.category_id,
            value: t.topic_id,
            id: id,
          }),
          " " + t.name,
        ]));
      });
      box.appendChild(fs);
    });
    if (!(call.categories || []).length) {
      box.appendChild(el("p", { class: "muted", text: _("No enquiry categories are set up for this call.") }));
    }
    $("enquiry-comment").value = call.comment || "";
  }

  function renderIdle(v) {
    var busy = v.offer || v.call;
    show($("idle-card"), !busy);
    if (busy) return;
    var text;
    if (v.state === "logged_out") text = _("You are not working. Choose your lines to start.");
    else if (v.state === "paused") text = _("You are paused. Press Ready to take calls.");
    else if (v.state === "ready") text = v.blocked ? _("Inbound is blocked for now.") : _("Waiting for calls…");
    else if (v.state === "wrap_up") text = _("Wrap-up: finish your notes, then you will get the next call.");
    else text = word("states", v.state);
    $("idle-text").textContent = text;
  }

  // --- answering service: the client's script, forward, call note (F-S1..F-S9) -----------

  var HANDLING = { note: _("Note"), forward: _("Announce and forward") };
  var HOURS = { open: _("Open now"), closed: _("Closed"), holiday: _("Holiday") };
  var NOTE_FIELDS = {
    message: ["note-message", _("Message")],
    caller_name: ["note-caller-name", _("Caller's name")],
    callback_number: ["note-callback", _("Callback number")],
    employee_id: ["note-employee", _("For")],
  };

  var script = null; // the script of the current call (GET /api/calls/{id}/script)
  var scriptCall = null; // the call id the script was fetched for
  var scriptLoading = null;
  var forwardEmployee = null; // who the agent is forwarding to (null: the client's targets)
  var failedShown = null; // the call whose failed forward already moved to the note

  function hoursOf(call) {
    return call.hours || (script && script.hours.status) || "open";
  }
  function isClosed(call) {
    var hours = hoursOf(call);
    return hours === "closed" || hours === "holiday";
  }
  function forwardBusy(call) {
    return !!(call.forward && (call.forward.status === "ringing" || call.forward.status === "announcing"));
  }
  function canForward(call) {
    return call.state === "connected" && !isClosed(call) && !forwardBusy(call);
  }
  // A time of the client's (its hours, an exception's end) on the client's wall clock, with
  // the zone named when the browser is elsewhere: never silently in the browser's zone.
  function dayAndTime(iso, zone) {
    if (!iso) return "";
    var d = new Date(iso);
    var options = { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
    if (zone) {
      try {
        return d.toLocaleString(page.locale, Object.assign({ timeZone: zone }, options)) + zoneSuffix(zone);
      } catch (e) { /* a zone this browser does not know: its own zone below */ }
    }
    return d.toLocaleString(page.locale, options);
  }
  function handlingText(h) {
    var text = HANDLING[h.kind] || h.kind;
    if (h.targets && h.targets.length) text += ": " + h.targets.join(" → ");
    return text;
  }
  function targetLabel(target) {
    var who = script && script.employees.filter(function (e) {
      return (e.handling.targets || []).indexOf(target) >= 0;
    })[0];
    return who ? who.name + " (" + target + ")" : target;
  }

  function renderScript(v) {
    var call = v.call;
    if (!call || !call.client_id) {
      show($("script-card"), false);
      script = null;
      scriptCall = null;
      scriptLoading = null;
      return;
    }
    show($("script-card"), true);
    if (scriptCall !== call.call_id) {
      if (scriptLoading !== call.call_id) loadScript(call);
      $("script-caller").textContent = call.caller || _("Unknown number");
      return;
    }
    renderScriptState(call);
  }

  function loadScript(call) {
    var callId = call.call_id;
    scriptLoading = callId;
    script = null;
    show($("script-loading"), true);
    show($("script-body"), false);
    show($("script-error"), false);
    api("GET", "/api/calls/" + callId + "/script").then(function (data) {
      if (scriptLoading !== callId) return;
      scriptLoading = null;
      scriptCall = callId;
      script = data.script;
      show($("script-loading"), false);
      buildScript(script, view.call || call);
      if (view.call && view.call.call_id === callId) renderScriptState(view.call);
    }, function (err) {
      if (scriptLoading !== callId) return;
      scriptLoading = null;
      scriptCall = callId; // do not ask again on every push; the error stays shown
      show($("script-loading"), false);
      $("script-error").textContent = err.message;
      show($("script-error"), true);
    });
  }

  function forwardButton(employeeId) {
    return el("button", {
      type: "button",
      class: "small-btn primary fwd-btn",
      text: _("Forward"),
      onclick: function () { startForward(employeeId); },
    });
  }
  function noteButton(employeeId, alternative) {
    return el("button", {
      type: "button",
      class: "small-btn note-btn" + (alternative ? " note-alt" : ""),
      text: _("Take a note"),
      onclick: function () { noteFor(employeeId); },
    });
  }
  // Forward where the handling says so (a note instead while forwarding is impossible);
  // otherwise a note. ``employeeId``: whose targets (null: the client's or the exception's).
  function actionsFor(h, employeeId, noteEmployee) {
    if (h.kind === "forward") return [forwardButton(employeeId), noteButton(noteEmployee, true)];
    return [noteButton(noteEmployee, false)];
  }

  function buildScript(s, call) {
    $("script-client").textContent = s.client;
    $("script-tone").textContent = s.tone === "formal" ? _("Formal") : _("Informal");
    $("script-tone").setAttribute("data-tone", s.tone);
    $("script-card").setAttribute("data-tone", s.tone);
    $("script-greeting").textContent = s.greeting;

    var ex = s.exception;
    show($("script-exception"), !!ex);
    $("script-exception-text").textContent = ex ? ex.instruction : "";
    $("script-exception-until").textContent = ex && ex.until ? fmt(_("until %(when)s"), { when: dayAndTime(ex.until, s.timezone) }) : "";

    $("script-instruction").textContent = s.instruction || "";
    show($("script-instruction"), !!s.instruction);
    show($("script-tone-hints"), s.spell_names || s.repeat_numbers);
    show($("hint-spell"), s.spell_names);
    show($("hint-repeat"), s.repeat_numbers);
    show($("note-spell"), s.spell_names);
    show($("note-repeat"), s.repeat_numbers);
    $("script-hours").textContent = s.hours.summary;

    var h = s.handling;
    $("script-handling").textContent = handlingText(h) + (h.source === "exception" ? " · " + _("current exception") : "");
    var actions = $("script-handling-actions");
    actions.textContent = "";
    actionsFor(h, null, null).forEach(function (b) { actions.appendChild(b); });

    var rows = $("script-employees");
    rows.textContent = "";
    (s.employees || []).forEach(function (e) {
      var forwardId = e.handling.source === "employee" ? e.id : null;
      var about = [e.department, e.title].filter(Boolean).join(" · ");
      rows.appendChild(el("tr", { "data-employee": e.id }, [
        el("td", {}, [
          el("strong", { text: e.name }),
          about ? el("div", { class: "muted small", text: about }) : el("span"),
          e.info ? el("div", { class: "small", text: e.info }) : el("span"),
        ]),
        el("td", { class: "handling-" + e.handling.kind, text: handlingText(e.handling) }),
        el("td", { class: "actions" }, actionsFor(e.handling, forwardId, e.id)),
      ]));
    });
    show($("script-employees-box"), !!(s.employees || []).length);

    var faq = $("script-faq");
    faq.textContent = "";
    (s.faq || []).forEach(function (f) {
      var linked = f.handling.source === "employee" ? f.employee_id : null;
      faq.appendChild(el("details", { "data-faq": f.id }, [
        el("summary", { text: f.question }),
        el("p", { text: f.answer }),
        el("div", { class: "row" }, [el("span", { class: "muted small", text: handlingText(f.handling) })]
          .concat(actionsFor(f.handling, linked, f.employee_id || null))),
      ]));
    });
    show($("script-faq-box"), !!(s.faq || []).length);

    var select = $("note-employee");
    select.textContent = "";
    select.appendChild(el("option", { value: "", text: fmt(_("%(client)s (no one in particular)"), { client: s.client }) }));
    (s.employees || []).forEach(function (e) {
      select.appendChild(el("option", { value: String(e.id), text: e.name + (e.department ? " – " + e.department : "") }));
    });
    ["note-caller-name", "note-message"].forEach(function (id) { $(id).value = ""; });
    var caller = call && call.caller ? call.caller : "";
    $("note-callback").value = /^\+?[0-9 ]{5,}$/.test(caller) ? caller : "";
    show($("note-msg"), false);
    show($("forward-msg"), false);
    forwardEmployee = null;
    failedShown = null;
  }

  function renderScriptState(call) {
    $("script-caller").textContent = call.caller || _("Unknown number");
    show($("script-hangup"), call.state !== "ended");
    if (!script) return;
    show($("script-body"), true);
    var hours = hoursOf(call);
    var closed = isClosed(call);
    var badge = $("script-hours-badge");
    badge.textContent = HOURS[hours] || hours;
    badge.setAttribute("data-hours", hours);
    show($("script-closed"), closed);
    var title = hours === "holiday"
      ? (script.hours.holiday ? fmt(_("Closed today: %(holiday)s."), { holiday: script.hours.holiday }) : _("Closed today (holiday)."))
      : _("Closed now.");
    if (script.hours.next_open) title += " " + fmt(_("Opens %(when)s."), { when: dayAndTime(script.hours.next_open, script.timezone) });
    $("script-closed-title").textContent = title;

    var forwardOk = canForward(call);
    var busy = forwardBusy(call);
    document.querySelectorAll("#script-card .fwd-btn").forEach(function (b) { show(b, forwardOk); });
    document.querySelectorAll("#script-card .note-alt").forEach(function (b) { show(b, !forwardOk && !busy); });

    var fwd = call.forward;
    show($("forward-box"), !!fwd);
    if (fwd) {
      var values = { target: targetLabel(fwd.target), attempt: fwd.attempt, attempts: fwd.attempts };
      var text = {
        ringing: fmt(_("Ringing %(target)s (%(attempt)s of %(attempts)s)…"), values),
        announcing: fmt(_("%(target)s answered. Announce the caller, then connect."), values),
        failed: _("Nobody took the call. Go back to the caller and take a note."),
        connected: fmt(_("Handed over to %(target)s."), values),
      }[fwd.status] || fwd.status;
      $("forward-text").textContent = text;
      $("forward-box").setAttribute("data-status", fwd.status);
      show($("forward-connect"), fwd.status === "announcing" && call.state === "connected");
      show($("forward-cancel"), busy && call.state === "connected");
      show($("forward-note"), fwd.status === "failed");
      if (fwd.status === "failed" && failedShown !== call.call_id) {
        failedShown = call.call_id;
        noteFor(forwardEmployee);
      }
    }
    var sent = $("note-sent");
    show(sent, call.notes > 0);
    sent.textContent = call.notes > 1
      ? "✔ " + fmt(_("%(n)s notes saved; they are e-mailed to the client."), { n: call.notes })
      : "✔ " + _("Note saved; it is e-mailed to the client.");
  }

  function startForward(employeeId) {
    if (!view.call) return;
    forwardEmployee = employeeId;
    show($("forward-msg"), false);
    quietly(act("/api/calls/" + view.call.call_id + "/forward", { employee_id: employeeId }, $("forward-msg")));
  }

  function noteFor(employeeId) {
    var select = $("note-employee");
    select.value = employeeId === null || employeeId === undefined ? "" : String(employeeId);
    if (select.selectedIndex < 0) select.value = "";
    var message = $("note-message");
    message.scrollIntoView({ block: "center", behavior: "smooth" });
    ($("note-caller-name").value ? message : $("note-caller-name")).focus({ preventScroll: true });
  }

  $("script-hangup").addEventListener("click", function () {
    if (view.call) quietly(act("/api/calls/" + view.call.call_id + "/hangup", {}, $("forward-msg")));
  });
  $("forward-connect").addEventListener("click", function () {
    if (view.call) quietly(act("/api/calls/" + view.call.call_id + "/forward/connect", {}, $("forward-msg")));
  });
  $("forward-cancel").addEventListener("click", function () {
    if (view.call) quietly(act("/api/calls/" + view.call.call_id + "/forward/cancel", {}, $("forward-msg")));
  });
  $("forward-note").addEventListener("click", function () { noteFor(forwardEmployee); });

  $("note-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (!view.call) return;
    var box = $("note-msg");
    show(box, false);
    clearInvalid(NOTE_FIELDS);
    var employee = $("note-employee").value;
    api("POST", "/api/calls/" + view.call.call_id + "/note", {
      message: $("note-message").value,
      caller_name: $("note-caller-name").value,
      callback_number: $("note-callback").value,
      employee_id: employee ? parseInt(employee, 10) : null,
    }).then(function () {
      $("note-message").value = "";
    }, function (err) {
      showRefusal(err, NOTE_FIELDS, box);
    });
  });

  // one clock for the countdowns on screen (no network)
  function tick() {
    if (!view) return;
    var now = Date.now();
    if (view.since) $("state-since").textContent = fmt(_("since %(time)s"), { time: clock(view.since) });
    if (view.offer) {
      var left = (new Date(view.offer.expires_at).getTime() - now) / 1000;
      $("offer-left").textContent = fmt(_("Accept within %(left)s"), { left: duration(left) });
    }
    if (view.state === "wrap_up" && view.wrap_up_until) {
      $("wrapup-left").textContent = duration((new Date(view.wrap_up_until).getTime() - now) / 1000);
    }
  }
  setInterval(tick, 1000);

  // --- scheduled callbacks (F-E6) ----------------------------------------------------------

  var CB_STATES = {
    scheduled: _("Scheduled"),
    reserved: _("Due: waiting for you"),
    due: _("Due"),
    delivered: _("Delivered"),
    cancelled: _("Cancelled"),
  };
  var CB_FIELDS = {
    due_at: ["cb-when", _("Date and time")],
    comment: ["cb-comment", _("Comment")],
  };
  var BROWSER_ZONE = (window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone) || "";
  var cbKey = null; // "call:contact" the form was built for
  var cbFacts = null; // GET /api/calls/{id}/callback
  var lastCallSig = null;
  var cbWatch = null;

  function forText(who) {
    return { me: _("me"), all: _("all agents") }[who] || _("another agent");
  }
  function zoneSuffix(zone) {
    return zone && zone !== BROWSER_ZONE ? " (" + zone.replace(/_/g, " ") + ")" : "";
  }

  // The form on the call card: only for a contact of an outbound campaign of this agent
  // (the server says so: the form's facts are refused otherwise).
  function renderCallbackForm(call) {
    var comment = call ? call.comment : "";
    $("call-comment-text").textContent = comment || "";
    show($("call-comment"), !!comment);
    var key = call && call.contact_id && call.campaign ? call.call_id + ":" + call.contact_id : null;
    if (key === cbKey) {
      if (call) $("cb-submit").disabled = call.state === "connecting";
      return;
    }
    cbKey = key;
    cbFacts = null;
    show($("cb-box"), false);
    show($("cb-done"), false);
    show($("cb-msg"), false);
    $("cb-when").value = "";
    $("cb-comment").value = "";
    $("cb-for-me").checked = true;
    clearInvalid(CB_FIELDS);
    if (!key) return;
    api("GET", "/api/calls/" + call.call_id + "/callback").then(function (facts) {
      if (cbKey !== key) return;
      cbFacts = facts;
      $("cb-when").min = facts.now_local;
      $("cb-zone").textContent = fmt(_("%(zone)s time"), { zone: facts.timezone.replace(/_/g, " ") });
      var p = facts.pending;
      $("cb-pending").textContent = p ? fmt(_("Already scheduled: %(when)s for %(who)s. A new time replaces it."), {
        when: p.due_local, who: forText(p.for),
      }) : "";
      show($("cb-pending"), !!p);
      show($("cb-box"), true);
      $("cb-submit").disabled = !!view.call && view.call.state === "connecting";
    }, function () { /* not a contact of an outbound campaign of this agent: no form */ });
  }

  $("cb-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (!view.call || !cbFacts) return;
    var box = $("cb-msg");
    show(box, false);
    show($("cb-done"), false);
    clearInvalid(CB_FIELDS);
    var contactId = cbFacts.contact_id;
    api("POST", "/api/calls/" + view.call.call_id + "/callback", {
      due_at: $("cb-when").value,
      comment: $("cb-comment").value,
      for: $("cb-for-all").checked ? "all" : "me",
      contact_id: contactId,
    }).then(function (data) {
      var c = data.callback;
      var values = { when: c.due_local + zoneSuffix(c.timezone), who: forText(c.for) };
      $("cb-done").textContent = "✔ " + (data.deferred
        ? fmt(_("Callback at %(when)s for %(who)s: it is scheduled when the call ends."), values)
        : fmt(_("Callback scheduled at %(when)s for %(who)s."), values));
      show($("cb-done"), true);
      $("cb-pending").textContent = "";
      show($("cb-pending"), false);
      if (data.deferred) cbWatch = contactId;
      loadCallbacks();
    }, function (err) {
      showRefusal(err, CB_FIELDS, box);
    });
  });

  // The scheduled-calls view: own callbacks and those for all agents of my campaigns.
  function loadCallbacks() {
    return api("GET", "/api/callbacks").then(renderCallbacks, function (err) {
      if (err.message === "login") return;
      $("callbacks-msg").textContent = err.message;
      show($("callbacks-msg"), true);
    });
  }

  var renderedCallbacks = null;
  function renderCallbacks(data) {
    var rows = data.callbacks || [];
    show($("callbacks-msg"), false);
    show($("callbacks-card"), rows.length > 0 || data.campaigns > 0);
    show($("no-callbacks"), !rows.length);
    if (cbWatch !== null && rows.some(function (r) { return r.contact_id === cbWatch && r.cancellable; })) {
      cbWatch = null;
    }
    var key = JSON.stringify(rows);
    if (key === renderedCallbacks) return; // unchanged: keep the list (and a click on it)
    renderedCallbacks = key;
    var list = $("callback-list");
    list.textContent = "";
    rows.forEach(function (r) {
      var about = [r.name ? r.phone : "", r.campaign, forText(r.for)].filter(Boolean).join(" · ");
      list.appendChild(el("li", { "data-callback": r.id, "data-state": r.state, "data-contact": r.contact_id }, [
        el("div", { class: "cb-head" }, [
          el("strong", { class: "cb-when", text: r.due_local + zoneSuffix(r.timezone) }),
          el("span", { class: "badge cb-state", "data-cb-state": r.state, text: CB_STATES[r.state] || r.state }),
        ]),
        el("div", {}, [
          el("span", { class: "cb-who", text: r.name || r.phone }),
          el("span", { class: "muted small", text: " " + about }),
        ]),
        r.comment ? el("p", { class: "cb-comment small", text: r.comment }) : el("span"),
        r.cancellable
          ? el("button", { type: "button", class: "small-btn ghost cb-cancel", text: _("Cancel callback"), onclick: function () { cancelCallback(r); } })
          : el("span"),
      ]));
    });
  }

  function cancelCallback(r) {
    var question = fmt(_("Cancel the callback to %(who)s at %(when)s?"), { who: r.name || r.phone, when: r.due_local });
    if (!window.confirm(question)) return;
    api("POST", "/api/callbacks/" + r.id + "/cancel").then(renderCallbacks, function (err) {
      if (err.message === "login") return;
      loadCallbacks().then(function () {
        $("callbacks-msg").textContent = err.message;
        show($("callbacks-msg"), true);
      });
    });
  }

  // A new call, an answered or ended one: the list may have changed (a delivered callback,
  // one the dialer wrote when the call ended: watched for a few seconds).
  function noticeCall(call) {
    var sig = call ? call.call_id + ":" + call.state : "";
    if (sig === lastCallSig) return;
    var first = lastCallSig === null;
    lastCallSig = sig;
    if (first) return;
    clearTimeout(noticeCall.timer);
    noticeCall.timer = setTimeout(loadCallbacks, 300);
    if (cbWatch !== null && (!call || call.state === "ended")) {
      var tries = 0;
      var watch = function () {
        if (cbWatch === null || ++tries > 10) return;
        loadCallbacks().then(function () { if (cbWatch !== null) setTimeout(watch, 1000); });
      };
      setTimeout(watch, 1000);
    }
  }

  $("callbacks-refresh").addEventListener("click", function () { loadCallbacks(); });
  setInterval(function () { if (!document.hidden) loadCallbacks(); }, 30000);

  // --- line choice -----------------------------------------------------------------------

  function openLinesDialog(mode) {
    linesDialogMode = mode;
    var box = $("lines-choices");
    box.textContent = "";
    (view.lines || []).forEach(function (line) {
      var id = "line-" + line.line_id;
      box.appendChild(el("label", { class: "choice", for: id }, [
        el("input", { type: "checkbox", id: id, value: line.line_id, checked: line.chosen || (mode === "start" && !anyChosen()) }),
        " ",
        el("strong", { text: line.name }),
        el("span", { class: "muted small", text: " " + line.did + " · " + fmt(_("%(n)s waiting"), { n: line.waiting }) }),
      ]));
    });
    if (!(view.lines || []).length) {
      box.appendChild(el("p", { class: "muted", text: _("You have no lines. Ask an administrator for access.") }));
    }
    $("lines-ok").textContent = mode === "start" ? _("Start work") : _("Save");
    show($("lines-msg"), false);
    var dialog = $("lines-dialog");
    if (!dialog.open) dialog.showModal();
  }
  function anyChosen() {
    return (view.lines || []).some(function (l) { return l.chosen; });
  }

  $("lines-form").addEventListener("submit", function (e) {
    e.preventDefault();
    unlockAudio();
    var ids = Array.prototype.map.call(
      document.querySelectorAll("#lines-choices input:checked"),
      function (input) { return parseInt(input.value, 10); }
    );
    var msg = $("lines-msg");
    if (!ids.length) {
      msg.textContent = _("Choose at least one line.");
      show(msg, true);
      return;
    }
    var steps = Promise.resolve();
    if (linesDialogMode === "start" || view.state === "logged_out") {
      if (view.state === "logged_out") steps = steps.then(function () { return act("/api/start", {}, msg); });
      steps = steps.then(function () { return act("/api/lines", { line_ids: ids }, msg); });
      steps = steps.then(function () { return view.state === "paused" ? act("/api/ready", {}, msg) : null; });
    } else {
      steps = steps.then(function () { return act("/api/lines", { line_ids: ids }, msg); });
    }
    steps.then(function () {
      linesDialogMode = null;
      $("lines-dialog").close();
    }, function () { /* message shown in the dialog */ });
  });
  $("lines-cancel").addEventListener("click", function () {
    linesDialogMode = null;
    $("lines-dialog").close();
  });
  $("lines-dialog").addEventListener("cancel", function () { linesDialogMode = null; });
  $("lines-btn").addEventListener("click", function () { openLinesDialog(view.state === "logged_out" ? "start" : "change"); });
  $("start-btn").addEventListener("click", function () { openLinesDialog("start"); });

  // --- controls --------------------------------------------------------------------------

  $("ready-btn").addEventListener("click", function () { quietly(act("/api/ready")); });
  $("pause-cancel").addEventListener("click", function () {
    quietly(act("/api/pause/cancel", {}));
  });
  $("pause-form").addEventListener("submit", function (e) {
    e.preventDefault();
    quietly(act("/api/pause", { reason: $("pause-reason").value }));
  });
  $("end-btn").addEventListener("click", function () { quietly(act("/api/end")); });
  $("wrapup-finish").addEventListener("click", function () { quietly(act("/api/wrapup/finish")); });
  $("wrapup-extend").addEventListener("click", function () { quietly(act("/api/wrapup/extend", { seconds: 30 })); });
  $("accept-btn").addEventListener("click", function () {
    if (view.offer) quietly(act("/api/offers/" + view.offer.call_id + "/accept"));
  });
  $("decline-btn").addEventListener("click", function () {
    if (view.offer) quietly(act("/api/offers/" + view.offer.call_id + "/decline"));
  });
  $("record-btn").addEventListener("click", function () {
    var btn = $("record-btn");
    quietly(act("/api/desk/record", {}, $("call-msg")).then(function () {
      btn.disabled = true;
      btn.textContent = _("Recording");
    }));
  });
  $("hangup-btn").addEventListener("click", function () {
    if (view.call) quietly(act("/api/calls/" + view.call.call_id + "/hangup", {}, $("call-msg")));
  });
  $("close-btn").addEventListener("click", function () {
    if (!view.call) return;
    show($("call-msg"), false);
    quietly(act("/api/calls/" + view.call.call_id + "/close", {}, $("call-msg")));
  });
  $("enquiry-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (!view.call) return;
    var topics = Array.prototype.map.call(
      document.querySelectorAll("#enquiry-categories input:checked"),
      function (input) { return parseInt(input.value, 10); }
    );
    show($("call-msg"), false);
    quietly(act("/api/calls/" + view.call.call_id + "/enquiry", {
      topic_ids: topics,
      comment: $("enquiry-comment").value,
    }, $("call-msg")));
  });
  $("clear-btn").addEventListener("click", function () {
    document.querySelectorAll("#enquiry-categories input").forEach(function (i) { i.checked = false; });
    $("enquiry-comment").value = "";
  });
  $("contact-search").addEventListener("submit", function (e) {
    e.preventDefault();
    var q = $("contact-q").value.trim();
    var results = $("search-results");
    results.textContent = "";
    if (!q) return;
    api("GET", "/api/contacts?q=" + encodeURIComponent(q)).then(function (data) {
      var found = data.contacts || [];
      if (!found.length) results.appendChild(el("li", { class: "muted", text: _("No contacts found.") }));
      found.forEach(function (c) { results.appendChild(contactItem(c, view.call)); });
    }, function (err) { flash(err.message); });
  });
  $("contact-new-form").addEventListener("submit", function (e) {
    e.preventDefault();
    if (!view.call) return;
    show($("call-msg"), false);
    act("/api/calls/" + view.call.call_id + "/contact/new", {
      name: $("cn-name").value,
      phone: $("cn-phone").value,
      company: $("cn-company").value,
      email: $("cn-email").value,
    }, $("call-msg")).then(function () { $("contact-new").open = false; }, function () {});
  });
  $("lang-select").addEventListener("change", function () {
    api("POST", "/api/language", { language: $("lang-select").value }).then(function () {
      window.location.reload();
    }, function (err) { flash(err.message); });
  });
  $("logout-form").addEventListener("submit", function () {
    if (source) source.close();  // the form POST /logout ends the session and shows /login
  });

  setupNotifyButton();
  render(view);
  loadCallbacks();
  connect();
})();
