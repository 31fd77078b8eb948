// Show bookable times in the browser's own time zone: reload once with ?tz= when the page guessed another.
(function () {
  "use strict";
  var root = document.getElementById("booking");
  var hint = document.getElementById("tz-hint");
  if (!root || root.getAttribute("data-tz-chosen") === "yes") { return; }
  var zone = null;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { zone = null; }
  if (!zone || zone === root.getAttribute("data-tz")) {
    if (hint) { hint.remove(); }  // the sentence then ends right after the zone's name
    return;
  }
  var url = new URL(window.location.href);
  url.searchParams.set("tz", zone);
  window.location.replace(url.toString());
})();
