// The system check on the verification page: browser/OS verdict (client hints), camera and microphone.
// No dependencies; runs under the strict CSP (no inline code). Every result goes into a live region.
(function () {
  "use strict";
  var root = document.getElementById("system-check");
  if (!root) { return; }
  var verdictBox = document.getElementById("verdict");
  var stateLine = document.getElementById("media-state");
  var testButton = document.getElementById("media-test");
  var preview = document.getElementById("preview");
  var meter = document.getElementById("mic-level");
  var deviceList = document.getElementById("devices");
  var startForm = document.getElementById("start-form");
  var stream = null;
  var audioContext = null;
  var mediaProblem = null;  // what the camera test found: "ok", "denied", "missing", "busy", "unavailable"

  function browserFamily() {
    var result = verdictBox.querySelector("[data-browser]");
    return result ? result.getAttribute("data-browser") : "other";
  }

  function verdictAttribute(name) {
    var result = verdictBox.querySelector("[data-verdict]");
    return result ? result.getAttribute(name) : null;
  }

  function onPhone() { return verdictAttribute("data-verdict") === "use_mobile_app"; }

  function show(id, visible) {
    var node = document.getElementById(id);
    if (node) { node.hidden = !visible; }
  }

  // ---- may the call start here? The server applies the same rule to the start request (freelancer/gate.py).
  function updateStart() {
    var phone = onPhone();
    if (phone) { stop(); }  // on a phone the Meet app tests the camera, not this page
    show("media-check", !phone);
    show("media-on-phone", phone);
    if (!startForm) { return; }
    var browserOk = verdictAttribute("data-may-start") === "yes";
    var cameraBad = !phone && (mediaProblem === "denied" || mediaProblem === "missing");
    startForm.hidden = !browserOk || cameraBad;
    show("start-blocked-browser", !browserOk);
    show("start-blocked-camera", browserOk && cameraBad);
    document.getElementById("start-camera").value = phone ? "" : (mediaProblem || "");
  }

  function noteMedia(problem) {
    mediaProblem = problem;
    root.setAttribute("data-media", problem);
    updateStart();
  }

  // ---- browser and system: send the high-entropy client hints (or the iPad-in-desktop-mode test)
  function postHints(hints) {
    var field = document.getElementById("start-hints");
    if (field) { field.value = JSON.stringify(hints); }  // the start request is judged with them too
    return fetch(root.getAttribute("data-check-url"), {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": root.getAttribute("data-csrf")},
      body: JSON.stringify({client_hints: hints})
    }).then(function (response) {
      if (!response.ok) { throw new Error("check failed: " + response.status); }
      return response.json();
    }).then(function (body) { verdictBox.innerHTML = body.html; updateStart(); });
  }

  function checkBrowser() {
    var touchMac = /Macintosh/.test(navigator.userAgent) && navigator.maxTouchPoints > 1;
    var data = navigator.userAgentData;
    if (data && data.getHighEntropyValues) {
      data.getHighEntropyValues(["platformVersion", "fullVersionList"]).then(function (values) {
        return postHints({brands: values.brands, fullVersionList: values.fullVersionList, mobile: values.mobile,
                          platform: values.platform, platformVersion: values.platformVersion, touchMac: touchMac});
      }).catch(function () { /* the server's verdict from the request headers stays */ });
    } else if (touchMac) {
      postHints({touchMac: true}).catch(function () {});
    }
  }

  // ---- camera and microphone
  function say(text) { stateLine.textContent = text; }

  function showFix(kind) {
    var fixes = root.querySelectorAll("[data-fix]");
    var family = browserFamily();
    for (var i = 0; i < fixes.length; i++) {
      var fix = fixes[i];
      fix.hidden = fix.getAttribute("data-fix") !== kind;
      var variants = fix.querySelectorAll("[data-browser]");
      var matched = false;
      for (var j = 0; j < variants.length; j++) {
        var fits = (" " + variants[j].getAttribute("data-browser") + " ").indexOf(" " + family + " ") >= 0;
        variants[j].hidden = !fits;
        matched = matched || fits;
      }
      if (!matched) {  // an unknown browser: show every variant rather than none
        for (var k = 0; k < variants.length; k++) { variants[k].hidden = false; }
      }
    }
  }

  function listDevices() {
    return navigator.mediaDevices.enumerateDevices().then(function (devices) {
      deviceList.textContent = "";
      devices.filter(function (d) { return d.kind === "videoinput" || d.kind === "audioinput"; })
        .forEach(function (d) {
          var item = document.createElement("li");
          item.textContent = (d.kind === "videoinput" ? "Camera: " : "Microphone: ") + (d.label || "unnamed device");
          deviceList.appendChild(item);
        });
      if (!deviceList.firstChild) {
        var none = document.createElement("li");
        none.textContent = "none";
        deviceList.appendChild(none);
      }
    });
  }

  function startMeter(source) {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    audioContext = new Context();
    var analyser = audioContext.createAnalyser();
    analyser.fftSize = 512;
    audioContext.createMediaStreamSource(source).connect(analyser);
    var samples = new Uint8Array(analyser.fftSize);
    (function tick() {
      if (!audioContext) { return; }
      analyser.getByteTimeDomainData(samples);
      var peak = 0;
      for (var i = 0; i < samples.length; i++) { peak = Math.max(peak, Math.abs(samples[i] - 128)); }
      meter.value = Math.min(100, Math.round(peak / 128 * 100 * 2));
      meter.textContent = String(meter.value);
      window.requestAnimationFrame(tick);
    })();
  }

  function problemOf(error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") { return "denied"; }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") { return "missing"; }
    if (name === "NotReadableError" || name === "AbortError" || name === "TrackStartError") { return "busy"; }
    return "unavailable";
  }

  var PROBLEM_TEXT = {
    denied: "Your browser is not allowed to use the camera or microphone. See how to allow them below.",
    missing: "We could not find a camera or microphone. See what you can do below.",
    busy: "Your camera or microphone is being used by another program. See below.",
    unavailable: "This browser cannot use a camera here. See below."
  };

  function testMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say(PROBLEM_TEXT.unavailable);
      showFix("unavailable");
      noteMedia("unavailable");
      return;
    }
    testButton.disabled = true;
    say("Asking your browser for the camera and microphone…");
    navigator.mediaDevices.getUserMedia({video: true, audio: true}).then(function (media) {
      stop();
      stream = media;
      preview.srcObject = media;
      var playing = preview.play();
      if (playing && playing.catch) { playing.catch(function () {}); }
      startMeter(media);
      showFix(null);
      say("Your camera and microphone are working. You should see yourself in the preview.");
      noteMedia("ok");
      return listDevices();
    }).catch(function (error) {
      var problem = problemOf(error);
      say(PROBLEM_TEXT[problem]);
      showFix(problem);
      noteMedia(problem);
    }).then(function () { testButton.disabled = false; });
  }

  function stop() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    if (audioContext) { audioContext.close(); audioContext = null; }
  }

  // The Permissions API does not know "camera" everywhere (older Firefox, Safari): any failure means "unknown".
  function permissionState(name) {
    try {
      return navigator.permissions.query({name: name}).then(function (s) { return s.state; },
                                                             function () { return "unknown"; });
    } catch (e) {
      return Promise.resolve("unknown");
    }
  }

  function checkPermissions() {
    if (onPhone() || !navigator.permissions || !navigator.permissions.query) { return; }
    Promise.all([permissionState("camera"), permissionState("microphone")]).then(function (states) {
      if (onPhone()) { return; }  // the hints said "phone" meanwhile
      if (states.indexOf("denied") >= 0) {
        say(PROBLEM_TEXT.denied);
        showFix("denied");
        noteMedia("denied");
      } else if (states[0] === "granted" && states[1] === "granted") {
        testMedia();  // already allowed: show the preview straight away
      }
    });
  }

  testButton.addEventListener("click", testMedia);
  window.addEventListener("pagehide", stop);
  checkBrowser();
  updateStart();
  checkPermissions();
})();
