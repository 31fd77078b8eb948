// Keyboard shortcuts of the queue and the session page (listed on each page under "Keyboard shortcuts").
// A single key without modifiers; never while the reviewer is typing in a field or a menu is open.
(function () {
  "use strict";
  var OUTCOMES = {p: "passed", f: "failed", i: "inconclusive", n: "no_show"};

  function typing(target) {
    if (!target || !target.tagName) { return false; }
    var tag = target.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select" || target.isContentEditable) { return true; }
    if (tag !== "input") { return false; }
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf((target.type || "").toLowerCase()) < 0;
  }

  function focusAndReveal(node) { node.focus(); node.scrollIntoView({block: "center"}); }

  function onQueue(key) {
    if (key !== "c") { return false; }
    var claim = document.querySelector("#live-queue button[type=submit]");  // the longest waiting first
    if (claim) { claim.click(); }
    return Boolean(claim);
  }

  function onSession(key) {
    var form = document.getElementById("decision-form");
    if (!form) { return false; }
    if (OUTCOMES[key]) {
      var radio = form.querySelector("input[name=result][value=" + OUTCOMES[key] + "]");
      radio.checked = true;
      radio.dispatchEvent(new Event("change", {bubbles: true}));
      focusAndReveal(radio);
      return true;
    }
    if (key === "x") {
      var next = form.querySelector("input[name=checklist]:not(:checked)") || form.querySelector("input[name=checklist]");
      if (next) { focusAndReveal(next); }
      return Boolean(next);
    }
    if (key === "r") {
      var button = document.getElementById("record-decision");
      focusAndReveal(button);
      if (!button.disabled) { form.requestSubmit(button); }
      return true;
    }
    return false;
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey || event.repeat) { return; }
    if (typing(event.target)) { return; }
    var key = (event.key || "").toLowerCase();
    if (key.length !== 1) { return; }
    if (onQueue(key) || onSession(key)) { event.preventDefault(); }
  });
})();
