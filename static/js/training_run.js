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

// Chart colours come from the page's colour tokens (static/css/app.css), so charts follow dark mode.
const token = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

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
      Chart.defaults.color = token("--muted");
      Chart.defaults.borderColor = token("--border");
      const colour = token("--chart-1");
      charts.set(key, new Chart(canvas, {
        type: "line",
        data: { datasets: [{ label: key, data: points, pointRadius: 0, borderWidth: 2,
          borderColor: colour, backgroundColor: colour }] },
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

function renderMetrics(metrics) {
  const table = document.getElementById("latest-metrics");
  const body = table.tBodies[0] || table.createTBody();
  body.replaceChildren();
  const entries = Object.entries(metrics || {});
  document.getElementById("metrics-empty").hidden = entries.length > 0;
  for (const [k, v] of entries) {
    const row = body.insertRow();
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = k;
    row.append(name);
    row.insertCell().textContent = typeof v === "number" ? Number(v.toPrecision(5)).toString() : JSON.stringify(v);
  }
}

function render(s) {
  const status = document.getElementById("run-status");
  status.textContent = s.status + (s.cancel_requested && LIVE.has(s.status) ? " (cancel requested)" : "");
  status.className = "status-" + s.status;
  document.getElementById("run-phase").textContent = s.phase;
  document.getElementById("run-progress").textContent = s.total ? `${s.step} / ${s.total}` : "not started";
  document.getElementById("run-timing").textContent = s.timing;
  const bar = document.getElementById("run-bar");
  bar.max = Math.max(s.total, 1);
  bar.value = s.step;
  const log = document.getElementById("run-log");
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = s.log_tail;
  if (atEnd) log.scrollTop = log.scrollHeight;  // follow the tail unless the reader scrolled up
  document.getElementById("run-error").textContent = s.error;
  // The latest values, or those of the last step in the history while the run has not finished a stage.
  const history = s.history || [];
  const latest = Object.keys(s.metrics || {}).length ? s.metrics : history.length ? history[history.length - 1] : {};
  renderMetrics(latest);
  drawCharts(history);
}

let failures = 0;

async function poll() {
  const note = document.getElementById("run-poll");
  try {
    const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    const s = await response.json();
    failures = 0;
    note.hidden = true;
    render(s);
    if (!LIVE.has(s.status)) {
      if (s.output_model) window.location.reload();  // show the produced model's link and actions
      return;
    }
  } catch (err) {
    failures += 1;
    note.hidden = false;
    note.textContent = `· no update for ${failures * 2} s (${err.message}); still trying`;
  }
  setTimeout(poll, 2000);
}

const initial = JSON.parse(document.getElementById("run-status-data").textContent);
render(initial);
if (LIVE.has(initial.status)) setTimeout(poll, 2000);
