/* asterisk-cube live panel: keeps the state pushed over SSE (a snapshot, then patches),
 * renders it, ticks the timers locally (no polling) and sends supervisor actions to the
 * JSON API. No framework, no build step; user-facing strings go through _(). */
(function () {
  "use strict";

  var page = window.cubePage("panel-data");
  var DATA = page.data;
  var _ = page._, fmt = page.fmt, word = page.word, $ = page.$, el = page.el, show = page.show;
  var flash = page.flash, quietly = page.quietly;

  // --- time: the server's clock, ticking locally ------------------------------------------

  var offset = 0; // server time - browser time, seconds
  function now() {
    return Date.now() / 1000 + offset;
  }
  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600);
    var m = Math.floor((seconds % 3600) / 60);
    var s = seconds % 60;
    var mm = (h && m < 10 ? "0" : "") + m;
    return (h ? h + ":" : "") + mm + ":" + (s < 10 ? "0" : "") + s;
  }
  function clock(epoch) {
    if (!epoch) return "";
    return new Date(epoch * 1000).toLocaleTimeString(page.locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function ticker(epoch) {
    // a cell showing the time since `epoch`, refreshed every second by tick()
    return el("span", { class: "tick", "data-t": epoch ? String(epoch) : "" }, [epoch ? duration(now() - epoch) : ""]);
  }
  function tick() {
    var t = now();
    var nodes = document.querySelectorAll(".tick");
    for (var i = 0; i < nodes.length; i++) {
      var since = parseFloat(nodes[i].getAttribute("data-t"));
      nodes[i].textContent = since ? duration(t - since) : "";
    }
    $("clock").textContent = clock(t);
    renderAmi();
  }

  // --- the state ----------------------------------------------------------------------------

  var SECTIONS = ["agents", "lines", "calls", "channels", "campaigns", "ami", "nodes"];
  var state = {};
  var seq = -1;
  SECTIONS.forEach(function (s) { state[s] = {}; });

  function applySnapshot(data) {
    seq = data.seq;
    offset = data.now - Date.now() / 1000;
    SECTIONS.forEach(function (s) { state[s] = data[s] || {}; });
    scheduleRender();
  }
  function applyPatch(data) {
    if (data.seq <= seq) return;
    seq = data.seq;
    if (data.now) offset = data.now - Date.now() / 1000;
    Object.keys(data.set || {}).forEach(function (s) {
      var items = data.set[s];
      Object.keys(items).forEach(function (k) { state[s][k] = items[k]; });
    });
    Object.keys(data.del || {}).forEach(function (s) {
      data.del[s].forEach(function (k) { delete state[s][k]; });
    });
    scheduleRender();
  }

  var renderPending = false;
  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    window.requestAnimationFrame(function () {
      renderPending = false;
      render();
    });
  }

  function values(section, sortKey) {
    var out = Object.keys(state[section]).map(function (k) { return state[section][k]; });
    if (sortKey) out.sort(sortKey);
    return out;
  }

  // Keyed rows: create once, update in place (an input being typed in keeps its value).
  function syncRows(tbody, items, keyOf, create, update) {
    var existing = {};
    Array.prototype.forEach.call(tbody.children, function (row) { existing[row.getAttribute("data-key")] = row; });
    var wanted = {};
    items.forEach(function (item, index) {
      var key = String(keyOf(item));
      wanted[key] = true;
      var row = existing[key];
      if (!row) {
        row = create(item);
        row.setAttribute("data-key", key);
      }
      update(row, item);
      if (tbody.children[index] !== row) tbody.insertBefore(row, tbody.children[index] || null);
    });
    Object.keys(existing).forEach(function (key) {
      if (!wanted[key]) tbody.removeChild(existing[key]);
    });
  }
  function setText(row, cls, text) {
    var node = row.querySelector("." + cls);
    if (node.textContent !== text) node.textContent = text;
    return node;
  }
  function setTick(row, cls, epoch) {
    var node = row.querySelector("." + cls);
    var value = epoch ? String(epoch) : "";
    if (node.getAttribute("data-t") !== value) {
      node.setAttribute("data-t", value);
      node.textContent = epoch ? duration(now() - epoch) : "";
    }
  }

  function lineName(id) {
    var line = state.lines[String(id)];
    return line ? line.name : "#" + id;
  }
  function agentName(id) {
    var agent = state.agents[String(id)];
    return agent ? agent.name : id ? "#" + id : "";
  }
  function campaignName(id) {
    var c = state.campaigns[String(id)];
    return c ? c.name : id ? "#" + id : "";
  }

  // --- rendering ----------------------------------------------------------------------------

  function render() {
    renderLines();
    renderAgents();
    renderCalls();
    renderCampaigns();
    renderChannels();
    renderAmi();
    renderNodes();
  }

  // --- several nodes (issue #14): who serves whom, and which node is down ---------------------

  function nodeText(name, down) {
    if (!name) return "";
    return down ? fmt(_("%(node)s (down)"), { node: name }) : name;
  }
  function isRemote(item) {
    var n = item.node && state.nodes[item.node];
    return !!(n && !n.me);
  }
  function renderNodes() {
    var nodes = values("nodes", function (a, b) { return a.name < b.name ? -1 : 1; });
    document.body.classList.toggle("multi-node", nodes.length > 1);
    syncRows($("nodes-body"), nodes, function (n) { return n.name; }, function (n) {
      return el("tr", { "data-node": n.name }, [
        el("td", { class: "node-name" }),
        el("td", { class: "node-host small" }),
        el("td", {}, [el("span", { class: "badge node-live" })]),
        el("td", { class: "num node-started small" }),
        el("td", { class: "num" }, [el("span", { class: "tick node-beat", "data-t": "" })]),
      ]);
    }, function (row, n) {
      setText(row, "node-name", n.me ? fmt(_("%(node)s (this one)"), { node: n.name }) : n.name);
      setText(row, "node-host", n.host);
      var badge = setText(row, "node-live", n.live ? _("Live") : _("Down"));
      badge.setAttribute("data-state", n.live ? "ready" : "logged_out");
      setText(row, "node-started", n.started ? clock(n.started) : "");
      setTick(row, "node-beat", n.heartbeat);
      row.classList.toggle("node-down", !n.live);
    });
  }

  function renderLines() {
    var lines = values("lines", function (a, b) { return b.priority - a.priority || (a.did < b.did ? -1 : 1); });
    var waiting = 0;
    syncRows($("lines-body"), lines, function (l) { return l.id; }, function (l) {
      var input = el("input", {
        type: "number", class: "prio-input", id: "prio-input-" + l.id, min: "-1000", max: "1000", step: "1",
        "aria-label": _("Priority"),
        onkeydown: function (e) { if (e.key === "Enter") savePriority(l.id); },
        oninput: function () { input.setAttribute("data-dirty", "1"); },
      });
      return el("tr", { "data-line": String(l.id) }, [
        el("td", {}, [el("span", { class: "line-name" }), el("div", { class: "muted small line-did" })]),
        el("td", { class: "num" }, [el("span", { class: "count waiting" })]),
        el("td", { class: "num" }, [el("span", { class: "tick longest", "data-t": "" })]),
        el("td", { class: "num staffed" }),
        el("td", { class: "num ready" }),
        el("td", { class: "prio" }, [
          input,
          el("button", { type: "button", class: "small-btn prio-save", id: "prio-save-" + l.id, text: _("Set"),
            onclick: function () { savePriority(l.id); } }),
        ]),
      ]);
    }, function (row, l) {
      waiting += l.waiting;
      setText(row, "line-name", l.name);
      setText(row, "line-did", l.did);
      var count = setText(row, "waiting", String(l.waiting));
      count.classList.toggle("hot", l.waiting > 0);
      setTick(row, "longest", l.waiting ? l.oldest : null);
      setText(row, "staffed", String(l.staffed));
      setText(row, "ready", String(l.ready));
      var input = row.querySelector(".prio-input");
      if (document.activeElement !== input && !input.getAttribute("data-dirty")) input.value = String(l.priority);
      input.setAttribute("data-current", String(l.priority));
    });
    var agents = values("agents");
    var ready = agents.filter(function (a) { return a.state === "ready"; }).length;
    var loggedIn = agents.filter(function (a) { return a.state !== "logged_out"; }).length;
    $("totals").textContent = fmt(_("%(waiting)s waiting · %(ready)s of %(in)s agents ready"), {
      waiting: waiting, ready: ready, "in": loggedIn,
    });
  }

  var pauseChoices = DATA.pause_reasons || [];

  function renderAgents() {
    var agents = values("agents", function (a, b) {
      var la = a.state === "logged_out" ? 1 : 0;
      var lb = b.state === "logged_out" ? 1 : 0;
      return la - lb || (a.name.toLowerCase() < b.name.toLowerCase() ? -1 : 1);
    });
    syncRows($("agents-body"), agents, function (a) { return a.id; }, function (a) {
      var select = el("select", { class: "pause-reason", "aria-label": _("Pause reason") },
        pauseChoices.map(function (p) { return el("option", { value: p[0], text: p[1] }); }));
      return el("tr", { "data-agent": String(a.id) }, [
        el("td", {}, [el("span", { class: "agent-name" }), el("div", { class: "muted small agent-user" })]),
        el("td", { class: "node-col agent-node small" }),
        el("td", {}, [el("span", { class: "badge state" }), el("div", { class: "small reason" })]),
        el("td", { class: "num" }, [el("span", { class: "tick in-state", "data-t": "" })]),
        el("td", { class: "call" }),
        el("td", {}, [el("span", { class: "device" }), el("div", { class: "small muted channel" })]),
        el("td", { class: "agent-lines small" }),
        el("td", { class: "actions" }, [
          el("span", { class: "pause-box" }, [
            select,
            el("button", { type: "button", class: "small-btn pause-btn", text: _("Pause"),
              onclick: function () { pauseAgent(a.id, select.value); } }),
          ]),
          el("button", { type: "button", class: "small-btn unpause-btn", text: _("Unpause"),
            onclick: function () { unpauseAgent(a.id); } }),
          el("button", { type: "button", class: "small-btn ghost staff-btn", text: _("Lines…"),
            onclick: function () { openStaffDialog(a.id); } }),
        ]),
      ]);
    }, function (row, a) {
      row.classList.toggle("logged-out", a.state === "logged_out");
      row.classList.toggle("node-down", !!a.node_down);
      setText(row, "agent-node", nodeText(a.node, a.node_down));
      setText(row, "agent-name", a.name);
      setText(row, "agent-user", a.username);
      var badge = setText(row, "state", word("states", a.state));
      badge.setAttribute("data-state", a.state);
      // inbound blocked (F-I5): a marker drawn in CSS (panel.css), no character a font may lack
      badge.toggleAttribute("data-blocked", !!a.blocked);
      if (a.blocked) badge.title = _("Inbound is blocked for now.");
      else badge.removeAttribute("title");
      var reason = "";
      if (a.state === "paused" && a.pause_reason) reason = word("pause", a.pause_reason);
      if (a.pause_requested) reason = fmt(_("Pause after the call: %(reason)s"), { reason: word("pause", a.pause_requested) });
      setText(row, "reason", reason);
      setTick(row, "in-state", a.state === "logged_out" ? null : a.since);
      var cell = row.querySelector(".call");
      var call = a.call_id ? state.calls[String(a.call_id)] : null;
      var callText = "";
      if (call) {
        callText = call.caller + " · " + (call.line_id ? lineName(call.line_id) : campaignName(call.campaign_id)) +
          " · " + word("phases", call.phase);
      } else if (a.state === "wrap_up") {
        callText = _("Wrap-up");
      }
      if (cell.textContent !== callText) cell.textContent = callText;
      var device = setText(row, "device", a.device ? word("devices", a.device) : a.endpoint ? "—" : _("No phone"));
      device.setAttribute("data-device", a.device || "");
      device.className = "device dev-" + (a.device || "none");
      var ch = a.channel;
      setText(row, "channel", ch ? ch.state + (ch.connected ? " ↔ " + ch.connected : "") : (a.endpoint || ""));
      var names = (a.lines || []).map(lineName).join(", ");
      var linesCell = row.querySelector(".agent-lines");
      if (linesCell.textContent !== names) linesCell.textContent = names;
      var here = !isRemote(a);  // another node's agent: its own node acts on it
      show(row.querySelector(".pause-box"), here && a.state !== "logged_out" && a.state !== "paused");
      show(row.querySelector(".unpause-btn"), here && a.state === "paused");
      show(row.querySelector(".staff-btn"), here);
    });
  }

  function renderCalls() {
    var calls = values("calls", function (a, b) { return a.queued_at - b.queued_at || a.id - b.id; });
    show($("no-calls"), calls.length === 0);
    show($("calls-table"), calls.length > 0);
    syncRows($("calls-body"), calls, function (c) { return c.id; }, function (c) {
      return el("tr", { "data-call": String(c.id) }, [
        el("td", { class: "caller big-num" }),
        el("td", { class: "node-col call-node small" }),
        el("td", { class: "where" }),
        el("td", {}, [el("span", { class: "badge phase" })]),
        el("td", { class: "num" }, [el("span", { class: "tick since", "data-t": "" })]),
        el("td", { class: "agent" }),
        el("td", { class: "audio" }, [
          // issue #17: the supervisor's phone rings, then hears the call (web/audio.py)
          el("button", { type: "button", class: "small-btn listen-btn", text: _("Listen"),
            title: _("Hear the caller and the agent; nobody hears you"),
            onclick: function () { listenTo(c.id, "listen"); } }),
          el("button", { type: "button", class: "small-btn whisper-btn", text: _("Whisper"),
            title: _("Speak to the agent only; the caller does not hear you"),
            onclick: function () { listenTo(c.id, "whisper"); } }),
          el("button", { type: "button", class: "small-btn barge-btn", text: _("Barge"),
            title: _("Join the call: both hear you"),
            onclick: function () { listenTo(c.id, "barge"); } }),
          el("button", { type: "button", class: "small-btn ghost record-btn", text: _("Record"),
            onclick: function () { recordCall(c.id); } }),
        ]),
      ]);
    }, function (row, c) {
      setText(row, "caller", c.caller || _("Unknown number"));
      setText(row, "call-node", nodeText(c.node, c.node_down));
      row.classList.toggle("node-down", !!c.node_down);
      setText(row, "where", c.line_id ? lineName(c.line_id) : campaignName(c.campaign_id) || word("kinds", c.kind));
      var badge = setText(row, "phase", word("phases", c.phase));
      badge.setAttribute("data-state", c.phase === "waiting" ? "paused" : c.phase === "offered" ? "offered" : "busy");
      setTick(row, "since", c.answered_at || c.queued_at);
      setText(row, "agent", agentName(c.agent_id));
      row.setAttribute("data-phase", c.phase);
      Array.prototype.forEach.call(row.querySelectorAll(".audio button"), function (b) {
        b.disabled = c.phase !== "connected" || isRemote(c);
      });
    });
    // the session ends with its call (the server hangs up your phone's leg)
    if (listening && !state.calls[String(listening.call_id)]) showListening(null);
  }

  function renderCampaigns() {
    var rows = values("campaigns", function (a, b) { return a.name < b.name ? -1 : 1; });
    show($("no-campaigns"), rows.length === 0);
    show($("campaigns-table"), rows.length > 0);
    syncRows($("campaigns-body"), rows, function (c) { return c.campaign_id; }, function (c) {
      function action(status, label) {
        return el("button", { type: "button", class: "small-btn camp-" + status, text: label,
          onclick: function () { setCampaign(c.campaign_id, status); } });
      }
      return el("tr", { "data-campaign": String(c.campaign_id) }, [
        el("td", {}, [el("span", { class: "camp-name line-name" }), el("div", { class: "muted small mode" })]),
        el("td", {}, [el("span", { class: "badge status" }), el("div", { class: "small muted pacing" })]),
        el("td", { class: "num camp-agents" }),
        el("td", { class: "num" }, [el("span", { class: "dialing" }), el("div", { class: "small muted lines-note" })]),
        el("td", { class: "num connected" }),
        el("td", { class: "num attempts" }),
        el("td", { class: "num connects" }),
        el("td", { class: "num" }, [el("span", { class: "pace" }), el("div", { class: "small muted answer-rate" })]),
        el("td", { class: "num" }, [el("span", { class: "rate" }), el("div", { class: "small muted rate-counts" })]),
        el("td", { class: "num left" }),
        el("td", { class: "actions" }, [action("running", _("Start")), action("paused", _("Pause")), action("stopped", _("Stop"))]),
      ]);
    }, function (row, c) {
      setText(row, "camp-name", c.name);
      setText(row, "mode", word("modes", c.mode));
      var badge = setText(row, "status", word("campaign_status", c.status));
      badge.setAttribute("data-state", c.status === "running" ? "ready" : c.status === "paused" ? "paused" : "logged_out");
      var live = c.live;
      // lines ringing now; the note: all of the dialer's lines (talking included)
      setText(row, "dialing", String(live ? live.ringing : c.dialing));
      setText(row, "lines-note", live && live.lines ? fmt(_("%(n)s lines in all"), { n: live.lines }) : "");
      setText(row, "camp-agents", live ? live.ready + " / " + live.agents : "");
      setText(row, "pace", live ? fmt(_("%(n)s/min"), { n: live.dials_per_minute.toFixed(1) }) : "");
      setText(row, "answer-rate", live && live.answer_rate !== null && live.answer_rate !== undefined ?
        fmt(_("%(pct)s answered"), { pct: (live.answer_rate * 100).toFixed(0) + "%" }) : "");
      var note = "";
      if (live && live.nothing_to_dial) note = _("Nothing to dial");
      else if (live && live.waiting) note = fmt(_("%(n)s answered, waiting for an agent"), { n: live.waiting });
      else if (live && live.pacing) note = word("pacing", live.pacing);
      var pacing = setText(row, "pacing", note);
      pacing.classList.toggle("warn-text", !!(live && live.nothing_to_dial));
      setText(row, "connected", String(c.connected));
      setText(row, "attempts", String(c.attempts));
      setText(row, "connects", String(c.connects));
      var rate = setText(row, "rate", (c.abandon_rate * 100).toFixed(1) + "% / " + (c.abandon_cap * 100).toFixed(1) + "%");
      rate.classList.toggle("over", !!c.over_cap);
      setText(row, "rate-counts", fmt(_("%(abandoned)s of %(answered)s"), { abandoned: c.abandoned, answered: c.answered }));
      setText(row, "left", String(c.left));
      row.querySelector(".left").classList.toggle("empty", c.left === 0 && c.status === "running");
      ["running", "paused", "stopped"].forEach(function (s) {
        row.querySelector(".camp-" + s).disabled = c.status === s;
      });
    });
  }

  function renderChannels() {
    var chans = values("channels", function (a, b) { return a.created - b.created; });
    $("channel-count").textContent = String(chans.length);
    syncRows($("channels-body"), chans, function (c) { return c.id; }, function () {
      return el("tr", {}, [
        el("td", { class: "name mono" }), el("td", { class: "state" }), el("td", { class: "caller" }),
        el("td", { class: "connected" }),
        el("td", { class: "num" }, [el("span", { class: "tick age", "data-t": "" })]),
        el("td", { class: "bridge mono small" }),
      ]);
    }, function (row, c) {
      setText(row, "name", c.name);
      setText(row, "state", c.state);
      setText(row, "caller", c.caller);
      setText(row, "connected", c.connected);
      setTick(row, "age", c.answered || c.created);
      setText(row, "bridge", c.bridge ? c.bridge.slice(0, 8) : "");
    });
  }

  function renderAmi() {
    var st = (state.ami && state.ami.status) || {};
    var badge = $("ami-badge");
    if (!st.enabled) {
      show(badge, false);
      show($("ami-stale"), false);
      return;
    }
    show(badge, true);
    badge.setAttribute("data-ami", st.stale ? "stale" : "ok");
    badge.textContent = st.stale ? _("Asterisk: stale") : _("Asterisk: live");
    show($("ami-stale"), !!st.stale);
    if (st.stale) {
      var parts = [];
      if (st.stale_since) {
        parts.push(fmt(_("Since %(time)s (%(ago)s ago)."), { time: clock(st.stale_since), ago: duration(now() - st.stale_since) }));
      }
      parts.push(_("Phone states and channels may be out of date; agent and queue states are live."));
      if (st.last_error) parts.push(fmt(_("Last error: %(error)s"), { error: st.last_error }));
      $("ami-stale-text").textContent = parts.join(" ");
    }
  }

  // --- actions ------------------------------------------------------------------------------

  function refusalText(body) {
    if (!body) return _("Something went wrong. The error has been logged; try again.");
    var text = body.message || word("reasons", body.error);
    if (body.detail && text.indexOf(body.detail) < 0) text += " (" + body.detail + ")";
    return text;
  }
  function post(path, body) {
    return page.request("POST", path, body, refusalText).catch(function (err) {
      if (err.message !== "login") flash(err.message);
      throw err;
    });
  }

  function savePriority(lineId) {
    var input = $("prio-input-" + lineId);
    var value = parseInt(input.value, 10);
    if (isNaN(value)) {
      flash(_("The priority must be a whole number."));
      return;
    }
    quietly(post("/api/panel/lines/" + lineId + "/priority", { priority: value }).then(function () {
      input.removeAttribute("data-dirty");
      input.blur();
    }));
  }
  function pauseAgent(agentId, reason) {
    quietly(post("/api/panel/agents/" + agentId + "/pause", { reason: reason }));
  }
  function unpauseAgent(agentId) {
    quietly(post("/api/panel/agents/" + agentId + "/ready", {}));
  }
  var LISTEN_MODES = { listen: _("Listening"), whisper: _("Whispering"), barge: _("Barging in") };
  var listening = null;
  function showListening(session) {
    listening = session || null;
    show($("listen-bar"), !!session);
    if (session) {
      $("listen-text").textContent = fmt(_("%(mode)s on call %(call)s"),
        { mode: LISTEN_MODES[session.mode] || session.mode, call: session.call_id });
    }
  }
  function listenTo(callId, mode) {
    $("listen-text").textContent = _("Ringing your phone…");
    show($("listen-bar"), true);
    post("/api/panel/calls/" + callId + "/" + mode, {}).then(showListening, function () {
      showListening(null);
    });
  }
  function stopListening() {
    quietly(post("/api/panel/listen/stop", {}).then(function () { showListening(null); }));
  }
  function recordCall(callId) {
    quietly(post("/api/panel/calls/" + callId + "/record", {}).then(function () {
      var b = document.querySelector('tr[data-call="' + callId + '"] .record-btn');
      if (b) { b.textContent = _("Recording"); b.setAttribute("data-recording", "1"); }
    }));
  }
  function setCampaign(campaignId, status) {
    quietly(post("/api/panel/campaigns/" + campaignId + "/status", { status: status }));
  }

  var staffAgent = null;
  function openStaffDialog(agentId) {
    var agent = state.agents[String(agentId)];
    if (!agent) return;
    staffAgent = agentId;
    $("staff-title").textContent = fmt(_("Lines for %(name)s"), { name: agent.name });
    var box = $("staff-choices");
    box.textContent = "";
    (agent.permitted || []).forEach(function (id) {
      var input = el("input", { type: "checkbox", value: String(id), checked: agent.lines.indexOf(id) >= 0 });
      box.appendChild(el("label", { class: "choice" }, [input, lineName(id)]));
    });
    if (!(agent.permitted || []).length) box.appendChild(el("p", { class: "muted", text: _("No lines are permitted for this agent.") }));
    show($("staff-msg"), false);
    $("staff-dialog").showModal();
  }
  $("staff-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var ids = Array.prototype.map.call(
      $("staff-choices").querySelectorAll("input:checked"), function (i) { return parseInt(i.value, 10); });
    post("/api/panel/agents/" + staffAgent + "/lines", { line_ids: ids }).then(function () {
      $("staff-dialog").close();
    }, function (err) {
      $("staff-msg").textContent = err.message;
      show($("staff-msg"), true);
    });
  });
  $("staff-cancel").addEventListener("click", function () { $("staff-dialog").close(); });
  $("listen-stop").addEventListener("click", stopListening);


  // --- push ---------------------------------------------------------------------------------

  var source = null;
  function connect() {
    source = new EventSource("/panel/events");
    source.addEventListener("snapshot", function (e) {
      show($("conn-lost"), false);
      applySnapshot(JSON.parse(e.data));
    });
    source.addEventListener("patch", function (e) {
      applyPatch(JSON.parse(e.data));
    });
    source.addEventListener("error", function () {
      show($("conn-lost"), true);
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(function () {
          fetch("/api/panel", { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (resp) {
            if (resp.status === 401) window.location.href = "/login";
            connect();
          }, function () { connect(); });
        }, 3000);
      }
    });
  }

  tick();
  setInterval(tick, 1000);
  connect();
  window.__panel = { state: state, seq: function () { return seq; } };
})();
