// Shows <time datetime> values in the reader's own time zone; the page reads fine without it (UTC).
(function () {
  "use strict";
  var fmt;
  try {
    fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (e) {
    return;
  }
  var nodes = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < nodes.length; i++) {
    var when = new Date(nodes[i].getAttribute("datetime"));
    if (!isNaN(when.getTime())) {
      nodes[i].title = nodes[i].textContent;
      nodes[i].textContent = fmt.format(when);
    }
  }
  var zone = document.querySelector(".tz");
  if (zone) {
    zone.textContent = "Times in your time zone";
  }
})();
