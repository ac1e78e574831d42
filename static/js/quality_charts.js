// Charts of the quality pages. Each <canvas data-chart="ID"> is drawn from the JSON in the element with
// that id (written by Django's json_script): {kind, y_label, series: [{label, points: [{x, y, low?, high?}]}]}.
// kind "over_time": x is a date (one line per labeler); "per_round": x is a round number; "win_rates": x is
// a model name (bars). Points with low/high get a 95% interval bar. Runs without inline scripts (CSP).
// Colours are app.css's tokens (--chart-1..8, --muted, --border), read when a chart is drawn; the charts are
// drawn again when the system switches between light and dark.
(function () {
  "use strict";
  const SERIES = 8;

  function token(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function palette() {
    return Array.from({ length: SERIES }, (_, i) => token(`--chart-${i + 1}`));
  }

  // Draws each point's interval (dataset.intervals[i] = [low, high]) as a vertical bar with caps.
  const intervalBars = {
    id: "intervalBars",
    afterDatasetsDraw(chart) {
      const { ctx, scales } = chart;
      chart.data.datasets.forEach((dataset, d) => {
        if (!dataset.intervals || !chart.isDatasetVisible(d)) return;
        chart.getDatasetMeta(d).data.forEach((element, i) => {
          const interval = dataset.intervals[i];
          if (!interval || interval[0] == null || interval[1] == null) return;
          const x = element.x, top = scales.y.getPixelForValue(interval[1]), bottom = scales.y.getPixelForValue(interval[0]);
          ctx.save();
          ctx.strokeStyle = dataset.borderColor;
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          ctx.moveTo(x, top); ctx.lineTo(x, bottom);
          ctx.moveTo(x - 4, top); ctx.lineTo(x + 4, top);
          ctx.moveTo(x - 4, bottom); ctx.lineTo(x + 4, bottom);
          ctx.stroke();
          ctx.restore();
        });
      });
    },
  };

  function percent(value) {
    return value == null ? "–" : (100 * value).toFixed(1) + "%";
  }

  function tooltipLabel(context) {
    const point = context.raw || {};
    const interval = context.dataset.intervals && context.dataset.intervals[context.dataIndex];
    let text = `${point.label || context.dataset.label}: ${percent(point.y)}`;
    if (interval && interval[0] != null) text += ` [${percent(interval[0])}, ${percent(interval[1])}]`;
    return text;
  }

  // A bar's fill: its series colour at 40% opacity (the tokens are #rrggbb).
  function translucent(colour) {
    return /^#[0-9a-f]{6}$/i.test(colour) ? colour + "66" : colour;
  }

  function config(spec) {
    const bars = spec.kind === "win_rates";
    const colours = palette();
    const datasets = spec.series.map((series, s) => ({
      label: series.label,
      data: series.points.map((p) => ({ x: p.x, y: p.y, label: p.label })),
      intervals: series.points.map((p) => (p.low != null ? [p.low, p.high] : null)),
      borderColor: colours[s % SERIES],
      backgroundColor: bars ? translucent(colours[s % SERIES]) : colours[s % SERIES],
      showLine: spec.kind === "over_time",
      pointRadius: 4,
      tension: 0,
    }));
    const xScale = spec.kind === "per_round"
      ? { type: "linear", suggestedMin: 0, title: { display: true, text: "round" }, ticks: { stepSize: 1, precision: 0 } }
      : { type: "category", labels: [...new Set(spec.series.flatMap((s) => s.points.map((p) => p.x)))].sort(bars ? undefined : (a, b) => (a < b ? -1 : 1)) };
    return {
      type: bars ? "bar" : "line",
      data: { datasets },
      plugins: [intervalBars],
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: { xAxisKey: "x", yAxisKey: "y" },
        scales: {
          x: xScale,
          y: { min: 0, max: 1, title: { display: true, text: spec.y_label }, ticks: { callback: (v) => percent(v) } },
        },
        plugins: {
          legend: { display: spec.series.length > 1 },
          tooltip: { callbacks: { label: tooltipLabel } },
        },
      },
    };
  }

  function draw() {
    if (typeof Chart !== "undefined") {
      Chart.defaults.color = token("--muted");
      Chart.defaults.borderColor = token("--border");
    }
    document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
      const source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      const spec = JSON.parse(source.textContent);
      const empty = !spec.series.some((s) => s.points.length);
      if (empty || typeof Chart === "undefined") {
        const note = document.createElement("p");
        note.className = "muted q-chart-empty";
        note.textContent = empty ? "Nothing to plot yet." : "The chart library did not load.";
        (canvas.closest(".q-chart") || canvas).replaceWith(note);
        return;
      }
      if (canvas.chart) canvas.chart.destroy();
      canvas.chart = new Chart(canvas, config(spec));
      canvas.dataset.drawn = "true";
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
})();
