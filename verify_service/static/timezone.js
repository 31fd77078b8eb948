// Show bookable times in the browser's own time zone: reload once with ?tz= when the page used another
// (the profile's, or one remembered from an earlier visit: the freelancer may have travelled since).
(function () {
  "use strict";
  var root = document.getElementById("booking");
  var hint = document.getElementById("tz-hint");
  if (!root || root.getAttribute("data-tz-chosen") === "yes") { return; }
  var zone = null;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { zone = null; }
  // Two names of one zone (Asia/Calcutta, Asia/Kolkata) are the same zone: the browser's own name for each decides.
  function browserName(name) {
    try { return new Intl.DateTimeFormat("en", {timeZone: name}).resolvedOptions().timeZone; } catch (e) { return name; }
  }
  if (!zone || browserName(zone) === browserName(root.getAttribute("data-tz"))) {
    if (hint) { hint.remove(); }  // the sentence then ends right after the zone's name
    return;
  }
  var url = new URL(window.location.href);
  url.searchParams.set("tz", zone);
  window.location.replace(url.toString());
})();
