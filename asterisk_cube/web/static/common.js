/* asterisk-cube pages' shared helpers (desk, panel), so each page keeps only its own logic:
 * the data the server embedded, translation, building the DOM, the flash message and the
 * JSON API call. A plain script, no build step: the page's template loads it before the
 * page's own script, which calls cubePage("<id of its JSON data element>"). */
(function () {
  "use strict";

  window.cubePage = function (dataId) {
    var DATA = JSON.parse(document.getElementById(dataId).textContent);
    var CATALOG = DATA.catalog || {};
    var WORDS = DATA.words || {};
    var LANG = DATA.lang || "en";

    // the catalog the page embeds for its language (see docs/i18n.md)
    function _(msg) {
      return Object.prototype.hasOwnProperty.call(CATALOG, msg) && CATALOG[msg] ? CATALOG[msg] : msg;
    }
    // fills %(name)s placeholders, as gettext's Python side does
    function fmt(msg, values) {
      return msg.replace(/%\((\w+)\)s/g, function (_m, key) {
        return values[key] === undefined ? "" : String(values[key]);
      });
    }
    // a translated name of a state, reason, kind...: the server's tables, else the key itself
    function word(group, key) {
      return (WORDS[group] && WORDS[group][key]) || key || "";
    }
    function $(id) {
      return document.getElementById(id);
    }
    // el("td", { class: "num", text: "3", onclick: fn }, [children]); null children are skipped
    function el(tag, attrs, children) {
      var node = document.createElement(tag);
      Object.keys(attrs || {}).forEach(function (k) {
        if (k === "text") node.textContent = attrs[k];
        else if (k === "class") node.className = attrs[k];
        else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), attrs[k]);
        else if (attrs[k] === true) node.setAttribute(k, "");
        else if (attrs[k] !== false && attrs[k] !== null && attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
      });
      (children || []).forEach(function (c) {
        if (c !== null && c !== undefined) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
      });
      return node;
    }
    function show(node, visible) {
      node.hidden = !visible;
    }

    // the page's #flash box: a message that hides itself after 8 seconds
    function flash(message) {
      var box = $("flash");
      box.textContent = message;
      show(box, !!message);
      if (message) {
        clearTimeout(flash.timer);
        flash.timer = setTimeout(function () { show(box, false); }, 8000);
      }
    }
    // for an action whose failure is shown already
    function quietly(promise) {
      return promise.catch(function () { /* shown already */ });
    }

    // One call to the JSON API. Resolves to the answer's JSON; a refusal rejects with an
    // Error whose message is refusal(body) and which carries .body and .status; a lost
    // session goes to the login page (and rejects with Error("login")).
    function request(method, path, body, refusal) {
      var opts = {
        method: method,
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      };
      if (method !== "GET") {
        opts.headers["X-CSRF-Token"] = DATA.csrf;
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(body || {});
      }
      return fetch(path, opts).then(function (resp) {
        return resp.json().catch(function () { return null; }).then(function (data) {
          if (resp.status === 401) {
            window.location.href = "/login";
            throw new Error("login");
          }
          if (!resp.ok) {
            var err = new Error(refusal(data));
            err.body = data;
            err.status = resp.status;
            throw err;
          }
          return data;
        });
      });
    }

    return {
      data: DATA,
      words: WORDS,
      locale: LANG === "nb" ? "nb-NO" : "en-GB",
      _: _,
      fmt: fmt,
      word: word,
      $: $,
      el: el,
      show: show,
      flash: flash,
      quietly: quietly,
      request: request,
    };
  };
})();
