/* asterisk-cube: the desk's Test call button (issue #16, docs/demo.md).
 *
 * Shown only when the server has a test-call line ([demo] test_call_did: the demo sets
 * it): GET /api/test-call says so. One click (POST /api/test-call) places the demo's
 * test call to that line; it is offered like any call, to be taken with the browser
 * phone or the desk phone. */
(function () {
  "use strict";

  var page = window.cubePage("desk-data");
  var _ = page._, $ = page.$, show = page.show, fmt = page.fmt;

  function refusal(body) {
    return (body && body.message) || _("Something went wrong. The error has been logged; try again.");
  }
  function say(id, text) {
    $(id).textContent = text || "";
    show($(id), !!text);
  }

  function place() {
    var btn = $("test-call-btn");
    btn.disabled = true;
    say("test-call-msg", "");
    say("test-call-done", "");
    page.request("POST", "/api/test-call", {}, refusal).then(function (data) {
      say("test-call-done", fmt(_("Calling line %(did)s: take the call when it is offered."), data));
    }, function (err) {
      if (err.message !== "login") say("test-call-msg", err.message);
    }).then(function () { btn.disabled = false; });
  }

  page.request("GET", "/api/test-call", null, refusal).then(function (state) {
    if (!state || !state.available) return;
    $("test-call-text").textContent = fmt(
      _("Rings line %(did)s from %(caller_id)s so you can take it here. The caller plays back what it hears: you hear yourself."),
      state
    );
    $("test-call-btn").addEventListener("click", place);
    show($("test-call-card"), true);
  }, function () { /* no test call on this server */ });
})();
