// A classic script that runs before the dashboard's modules: if they cannot load or start (an old browser,
// a proxy that mangles them), the page says so in words instead of staying blank.
(function () {
  "use strict";
  function fail(message) {
    if (window.waybackStarted) return;
    var loading = document.getElementById("loading");
    if (!loading) return;
    loading.className = "error";
    loading.textContent = message;
  }
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target.tagName === "SCRIPT") {
      fail("The dashboard's scripts could not be loaded from the server (" + (target.src || "a script") +
        "). Reload the page; if it persists, check that wayback serve is running and reachable.");
    }
  }, true);
  window.setTimeout(function () {
    fail("The dashboard did not start. It needs a current browser with JavaScript modules " +
      "(Chrome, Edge, Firefox or Safari from 2020 on). The same operations are available from the command line: " +
      "wayback history, wayback restore.");
  }, 10000);
})();
