// Small helpers for the review pages; every page works without them.
(function () {
  "use strict";

  // Submit a decision form once: a double click or a second Enter sends nothing more.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-once")) return;
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    // Disabled after the browser has read the clicked button's name and value.
    setTimeout(function () {
      form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    }, 0);
  });

  function typing(event) {
    var t = event.target;
    return t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var all = document.getElementById("select-all");
    if (all) {
      all.addEventListener("change", function () {
        document.querySelectorAll('#queue input[name="ids"]').forEach(function (box) { box.checked = all.checked; });
      });
    }
    var rows = Array.prototype.slice.call(document.querySelectorAll("[data-keyboard-list] tbody tr[data-href]"));
    var current = -1;
    function move(to) {
      if (!rows.length) return;
      if (current >= 0) rows[current].classList.remove("current");
      current = Math.max(0, Math.min(rows.length - 1, to));
      rows[current].classList.add("current");
      rows[current].scrollIntoView({ block: "nearest" });
    }
    document.addEventListener("keydown", function (event) {
      if (typing(event) || event.ctrlKey || event.metaKey || event.altKey) return;
      var button = document.querySelector('button[data-key="' + event.key + '"]');
      if (button) { event.preventDefault(); button.click(); return; }
      if (!rows.length) return;
      if (event.key === "j") move(current + 1);
      else if (event.key === "k") move(current - 1);
      else if (event.key === "x" && current >= 0) {
        var box = rows[current].querySelector('input[type="checkbox"]');
        box.checked = !box.checked;
      } else if ((event.key === "o" || event.key === "Enter") && current >= 0) {
        window.location.href = rows[current].dataset.href;
      }
    });
  });
})();
