// Keeps the page current without a reload: every few seconds, fetch this same URL's <main>
// (the server renders only it for the X-Kuma-Gui: fragment header) and swap it in when it
// changed. Paused while the tab is hidden or a field in the page has the focus.
(function () {
  "use strict";
  var main = document.getElementById("live");
  var badge = document.getElementById("live-status");
  var seconds = Number(document.body.getAttribute("data-poll-seconds")) || 2;
  var last = null;
  var busy = false;

  function show(text, stale) {
    badge.textContent = text;
    badge.className = stale ? "live stale" : "live";
  }

  function poll() {
    var focused = document.activeElement;
    if (busy || document.hidden || (focused && focused !== document.body && main.contains(focused))) {
      return;
    }
    busy = true;
    fetch(location.href, {headers: {"X-Kuma-Gui": "fragment"}, cache: "no-store"})
      .then(function (response) {
        return response.text().then(function (text) {
          if (text !== last) {
            main.innerHTML = text;
            last = text;
          }
          show(response.ok ? "live · " + new Date().toLocaleTimeString() : "live · error", !response.ok);
        });
      })
      .catch(function () { show("live · unreachable", true); })
      .then(function () { busy = false; });
  }

  setInterval(poll, seconds * 1000);
})();
