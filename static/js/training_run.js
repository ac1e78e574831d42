// Live view of a training run: polls status.json while the run is queued or running and redraws
// the progress, the latest metrics, the log tail and one chart per metric (loss, reward, KL, accuracy...).
const script = document.getElementById("run-script");
const statusUrl = script.dataset.statusUrl;
const charts = new Map();
const LIVE = new Set(["queued", "running"]);
// Metrics worth a chart, in this order, when the run reports them.
const PREFERRED = ["loss", "train_loss", "eval_loss", "reward", "mean_reward", "kl", "accuracy", "eval_accuracy",
  "value_loss", "entropy", "clip_fraction", "approx_kl", "margin", "response_length"];

function chartKeys(history) {
  const keys = new Set();
  for (const row of history) for (const [k, v] of Object.entries(row)) if (k !== "step" && typeof v === "number") keys.add(k);
  const ordered = PREFERRED.filter((k) => keys.has(k));
  for (const k of [...keys].sort()) if (!ordered.includes(k)) ordered.push(k);
  return ordered.slice(0, 8);
}

function drawCharts(history) {
  const box = document.getElementById("charts");
  for (const key of chartKeys(history)) {
    const points = history.filter((r) => typeof r[key] === "number").map((r) => ({ x: r.step, y: r[key] }));
    if (!charts.has(key)) {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      const caption = document.createElement("figcaption");
      caption.textContent = key;
      figure.append(canvas, caption);
      box.append(figure);
      if (typeof Chart === "undefined") continue;
      charts.set(key, new Chart(canvas, {
        type: "line",
        data: { datasets: [{ label: key, data: points, pointRadius: 0, borderWidth: 2 }] },
        options: { animation: false, parsing: false, plugins: { legend: { display: false } },
          scales: { x: { type: "linear", title: { display: true, text: "step" } } } },
      }));
    } else {
      const chart = charts.get(key);
      chart.data.datasets[0].data = points;
      chart.update();
    }
  }
}

function render(s) {
  const status = document.getElementById("run-status");
  status.textContent = s.status + (s.cancel_requested && LIVE.has(s.status) ? " (cancel requested)" : "");
  status.className = "status-" + s.status;
  document.getElementById("run-progress").textContent = `${s.step} / ${s.total}`;
  const bar = document.getElementById("run-bar");
  bar.max = Math.max(s.total, 1);
  bar.value = s.step;
  document.getElementById("run-log").textContent = s.log_tail;
  document.getElementById("run-error").textContent = s.error;
  const table = document.getElementById("latest-metrics");
  table.replaceChildren();
  for (const [k, v] of Object.entries(s.metrics || {})) {
    const row = table.insertRow();
    row.insertCell().textContent = k;
    row.insertCell().textContent = typeof v === "number" ? Number(v.toPrecision(5)).toString() : JSON.stringify(v);
  }
  drawCharts(s.history || []);
}

async function poll() {
  try {
    const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.ok) {
      const s = await response.json();
      render(s);
      if (!LIVE.has(s.status)) {
        if (s.output_model) window.location.reload();  // show the produced model's link and actions
        return;
      }
    }
  } catch (err) {
    console.warn("status poll failed", err);
  }
  setTimeout(poll, 2000);
}

const initial = JSON.parse(document.getElementById("run-status-data").textContent);
render(initial);
if (LIVE.has(initial.status)) setTimeout(poll, 2000);
