// The waiting room's live status: polls the session every data-poll-seconds (1 s when Meet's events make the
// service's attendance real time, else 4 s) and updates the page in place;
// for a new stage (booked, second review, result) it reloads so the server renders it.
(function () {
  "use strict";
  var root = document.getElementById("call");
  if (!root) { return; }
  var LIVE = ["preparing", "waiting", "in_call"];
  var phase = root.getAttribute("data-phase");
  var every = (parseFloat(root.getAttribute("data-poll-seconds")) || 4) * 1000;
  var title = document.getElementById("call-title");

  // After a reload caused by a change, move focus to the new heading so screen readers read it.
  try {
    if (window.sessionStorage.getItem("verify-focus") === "1") {
      window.sessionStorage.removeItem("verify-focus");
      if (title) { title.focus(); }
    }
  } catch (e) { /* storage may be disabled: focus stays where it was */ }

  if (LIVE.indexOf(phase) < 0) { return; }

  function set(id, text) {
    var node = document.getElementById(id);
    if (node && node.textContent !== text) { node.textContent = text; }
  }

  function reload() {
    try { window.sessionStorage.setItem("verify-focus", "1"); } catch (e) {}
    window.location.reload();
  }

  function apply(body) {
    if (LIVE.indexOf(body.phase) < 0) { reload(); return; }
    set("call-title", body.title);
    set("call-message", body.message);
    document.title = body.title + " · verify-service";
    if (body.meet_uri) {
      document.getElementById("join-link").setAttribute("href", body.meet_uri);
      document.getElementById("join").hidden = false;
      document.getElementById("join-waiting").hidden = true;
    }
    document.getElementById("queue").hidden = body.phase === "in_call";
    document.getElementById("queue-availability").hidden = body.phase === "in_call";
    set("queue-availability", body.availability || "");
    document.getElementById("leave").hidden = body.status !== "waiting";  // a reviewer has the call now
    set("queue-position", body.position ? String(body.position) : "–");
    // No estimate while nobody is working to back one (the server sends none then).
    set("queue-estimate", body.estimate_minutes ? "about " + body.estimate_minutes + " min" : "–");
    set("queue-reviewers", body.reviewers_now === null ? "–" : String(body.reviewers_now));
    phase = body.phase;
    root.setAttribute("data-phase", phase);
  }

  function poll() {
    fetch(root.getAttribute("data-status-url"), {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (response.status === 401 || response.status === 410) { reload(); return null; }  // signed out, or closed
        return response.ok ? response.json() : null;
      })
      .then(function (body) { if (body) { apply(body); } })
      .catch(function () { /* a network blip: try again next time */ })
      .then(function () {
        if (LIVE.indexOf(phase) >= 0) { window.setTimeout(poll, document.hidden ? 15000 : every); }
      });
  }
  window.setTimeout(poll, every);
})();
