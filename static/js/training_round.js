// Live view of a round: polls status.json while the round runs and redraws each step's state, the time it
// took, the estimate of what is left, the reward's verdict and the new batch. The server writes every text
// (times in words included), so this script only places them.
const script = document.getElementById("round-script");
const statusUrl = script.dataset.statusUrl;
const EVERY_MS = 2000;

function text(id, value) {
  const node = document.getElementById(id);
  if (node) node.textContent = value ?? "";
}

function runsCell(cell, runs) {
  cell.replaceChildren();
  runs.forEach((run, index) => {
    if (index) cell.append(", ");
    const link = document.createElement("a");
    link.href = run.url;
    link.textContent = `run ${run.id}`;
    cell.append(link, ` ${run.status}` + (run.total ? ` (${run.step} / ${run.total})` : ""));
  });
}

function renderSteps(steps) {
  const body = document.querySelector("#round-steps tbody");
  for (const step of steps) {
    const row = body.querySelector(`tr[data-step="${step.name}"]`);
    if (!row) continue;
    row.className = `step-${step.state}`;
    const state = row.querySelector(".step-state");
    state.textContent = step.state;
    state.className = `step-state status-${step.state}`;
    row.querySelector(".step-took").textContent = step.took;
    row.querySelector(".step-left").textContent = step.left;
    runsCell(row.querySelector(".step-runs"), step.runs);
  }
}

function renderReward(reward) {
  const box = document.getElementById("round-reward");
  box.hidden = !reward;
  if (!reward) return;
  box.classList.toggle("fell", reward.fell === true);
  box.replaceChildren(...reward.sentences.map((sentence) => {
    const p = document.createElement("p");
    p.textContent = sentence;
    return p;
  }));
}

function render(s) {
  const status = document.getElementById("round-status");
  status.textContent = s.status;
  status.className = `status-${s.status}`;
  text("round-elapsed", s.elapsed_words);
  text("round-remaining", s.remaining_words ? ` · ${s.remaining_words}` : "");
  document.getElementById("round-live").hidden = s.finished;
  renderSteps(s.steps);
  text("round-error", s.error);
  renderReward(s.reward);
  const batch = document.getElementById("round-batch");
  batch.hidden = !s.batch;
  if (s.batch) {
    text("round-batch-name", s.batch.name);
    text("round-batch-tasks", String(s.batch.tasks));
    text("round-batch-status", s.batch.status);
  }
  const retry = document.getElementById("round-retry");
  if (retry) retry.hidden = s.status !== "failed";
}

async function poll() {
  try {
    const response = await fetch(statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.ok) {
      const s = await response.json();
      render(s);
      if (s.finished) return;
    }
  } catch (err) {
    console.warn("round status poll failed", err);
  }
  setTimeout(poll, EVERY_MS);
}

const initial = JSON.parse(document.getElementById("round-status-data").textContent);
render(initial);
if (!initial.finished) setTimeout(poll, EVERY_MS);
