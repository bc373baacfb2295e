// The Reports page: each <canvas data-chart="ID"> draws the JSON in <script type="application/json" id="ID">
// (json_script) with Chart.js (static/vendor/chart.umd.min.js). The table under each chart holds the same
// figures: it is the chart's text alternative, and what the page shows without JavaScript.
(function () {
  "use strict";

  // Colour-blind-safe (Okabe–Ito), in a fixed order so a series keeps its colour between reloads.
  const COLOURS = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"];

  function draw(canvas) {
    const source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof window.Chart !== "function") return;
    const data = JSON.parse(source.textContent);
    const datasets = data.datasets.map(function (dataset, n) {
      const colour = COLOURS[n % COLOURS.length];
      return { label: dataset.label, data: dataset.data, backgroundColor: colour, borderColor: colour };
    });
    const stacked = Boolean(data.stacked);
    canvas.chart = new window.Chart(canvas, {
      type: data.type,
      data: { labels: data.labels, datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: { x: { stacked: stacked }, y: { stacked: stacked, beginAtZero: true } },
        plugins: { legend: { position: "bottom" } },
      },
    });
    canvas.dataset.drawn = "true";
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
