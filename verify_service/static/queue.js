// The dashboard's live parts: every element with data-live-url is refreshed in place from that URL
// (JSON {html: ...}, rendered and escaped by the server) every data-live-every seconds; slower when hidden.
(function () {
  "use strict";
  var parts = document.querySelectorAll("[data-live-url]");

  function refresh(node) {
    var every = (parseInt(node.getAttribute("data-live-every"), 10) || 5) * 1000;
    function again() { window.setTimeout(tick, document.hidden ? Math.max(every, 30000) : every); }
    function tick() {
      fetch(node.getAttribute("data-live-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }  // signed out: show that page
          return response.ok ? response.json() : null;
        })
        .then(function (body) {
          // Leave the part alone while someone is using a control inside it (a half-clicked form).
          if (body && typeof body.html === "string" && !node.contains(document.activeElement)) {
            node.innerHTML = body.html;
          }
        })
        .catch(function () { /* a network blip: try again next time */ })
        .then(again);
    }
    again();
  }

  for (var i = 0; i < parts.length; i++) { refresh(parts[i]); }
})();
