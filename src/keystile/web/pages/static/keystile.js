// Keystile hosted pages: conveniences only. Every page works without this script.
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    document.querySelectorAll(".ks-js").forEach(function (el) { el.hidden = false; });
    var status = document.getElementById("ks-copied");
    document.querySelectorAll("[data-ks-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var list = document.getElementById(button.getAttribute("data-ks-copy"));
        var text = Array.prototype.map.call(list.querySelectorAll("code"), function (c) {
          return c.textContent;
        }).join("\n") + "\n";
        navigator.clipboard.writeText(text).then(function () {
          if (status) { status.textContent = button.getAttribute("data-ks-done") || "\u2713"; }
        });
      });
    });
    document.querySelectorAll("[data-ks-print]").forEach(function (button) {
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();
