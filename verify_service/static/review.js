// The session page's decision form: live checklist progress, and why a pass cannot be recorded yet.
// The server decides (it refuses a pass without its evidence and lists what is missing); this only tells
// the reviewer before they press the button. Keyboard shortcuts live in shortcuts.js.
(function () {
  "use strict";
  var form = document.getElementById("decision-form");
  if (!form) { return; }
  var boxes = form.querySelectorAll("input[name=checklist]");
  var progress = document.getElementById("checklist-progress");
  var list = document.getElementById("pass-missing");
  var ready = document.getElementById("pass-ready");
  var button = document.getElementById("record-decision");
  var why = document.getElementById("pass-blocked");

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function update() {
    var done = 0;
    for (var i = 0; i < boxes.length; i++) { if (boxes[i].checked) { done++; } }
    var left = boxes.length - done;
    progress.textContent = done + " of " + boxes.length + " checks done";
    var item = list.querySelector("[data-missing=checklist]");
    if (left && !item) {
      item = document.createElement("li");
      item.setAttribute("data-missing", "checklist");
      list.appendChild(item);
    }
    if (item) {
      if (left) { item.textContent = plural(left, "checklist item") + " not ticked"; } else { list.removeChild(item); }
    }
    ready.hidden = list.children.length > 0;
    var passing = form.querySelector("input[name=result][value=passed]:checked") !== null;
    var blockers = [];
    if (left) { blockers.push("tick " + (left === 1 ? "the last checklist item" : "the " + left + " checklist items left")); }
    if (list.querySelector("[data-missing=identity_document]")) { blockers.push("record a valid ID document above"); }
    var blocked = passing && blockers.length > 0;
    button.disabled = blocked;
    why.textContent = blocked ? "A pass cannot be recorded yet: " + blockers.join(" and ") + "." : "";
  }

  // The attendance part refreshes itself (queue.js): the freelancer seen in the call is one thing less to wait for.
  var attendance = document.getElementById("live-attendance");
  var unseen = list.querySelector("[data-missing=attendance]");
  function followAttendance() {
    var facts = attendance.querySelector("[data-freelancer-seen]");
    if (!facts || !unseen) { return; }
    var seen = facts.getAttribute("data-freelancer-seen") === "yes";
    if (seen && unseen.parentNode) { list.removeChild(unseen); }
    if (!seen && !unseen.parentNode) { list.insertBefore(unseen, list.firstChild); }
    update();
  }
  if (attendance && window.MutationObserver) {
    new MutationObserver(followAttendance).observe(attendance, {childList: true});
  }

  form.addEventListener("change", update);
  update();
})();
