/* asterisk-cube reports page: draws the report's chart with Chart.js (vendored, no CDN)
   from the figures the server embedded; changing the report reloads the form with that
   report's default grouping. */
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  var kind = document.getElementById("f-report");
  if (form && kind) {
    kind.addEventListener("change", function () {
      // another report has other grouping keys and filters: start from its defaults
      form.querySelectorAll("input[name=group], #report-form .fields input[type=text]:not(#f-zone), #f-sl")
        .forEach(function (el) { el.disabled = true; });
      form.submit();
    });
  }
  var dataEl = document.getElementById("chart-data");
  var canvas = document.getElementById("report-chart");
  if (!dataEl || !canvas || typeof Chart === "undefined") { return; }
  var spec = JSON.parse(dataEl.textContent);
  if (!spec) { return; }
  var colours = ["#1f6feb", "#2da44e", "#cf222e", "#bf8700", "#8250df"];
  var datasets = spec.datasets.map(function (ds, i) {
    return {
      label: ds.label,
      data: ds.data,
      backgroundColor: colours[i % colours.length],
      borderColor: colours[i % colours.length],
      fill: false,
      tension: 0.2,
    };
  });
  new Chart(canvas, {
    type: spec.type,
    data: { labels: spec.labels, datasets: datasets },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { y: { beginAtZero: true } },
      plugins: { legend: { position: "top" } },
    },
  });
  canvas.setAttribute("data-drawn", "1");
})();
