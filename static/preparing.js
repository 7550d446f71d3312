// Polls the migration's progress and moves on when it is done. Without JavaScript, the
// page's meta refresh does the same, more slowly.
(function () {
  "use strict";
  var box = document.getElementById("preparing");
  if (!box) { return; }
  var bar = document.getElementById("preparing-bar");
  var status = document.getElementById("preparing-status");
  var url = box.getAttribute("data-progress-url");
  var meta = document.querySelector('meta[http-equiv="refresh"]');
  if (meta) { meta.parentNode.removeChild(meta); }  // we poll instead

  function show(p) {
    if (p.itemsTotal) {
      bar.max = p.itemsTotal;
      bar.value = Math.min(p.items, p.itemsTotal);
      status.textContent = p.items + " of " + p.itemsTotal + " items copied.";
    } else {
      status.textContent = p.items + " items copied so far.";
    }
    if (p.retrying) {
      status.textContent = "The database is busy right now, so we are retrying automatically. " +
        "You don't need to do anything.";
    }
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.redirected || !response.ok) { throw new Error("not json"); }
        return response.json();
      })
      .then(function (p) {
        if (p.done) {
          if (bar.max) { bar.value = bar.max; }
          window.location.assign(p.next || "/");
          return;
        }
        show(p);
        window.setTimeout(poll, 500);
      })
      .catch(function () { window.setTimeout(function () { window.location.reload(); }, 2000); });
  }
  window.setTimeout(poll, 300);
}());
