// Live view of an import or export job: while it is queued or running, polls the job's API address,
// shows its progress and what it is doing, and reloads the page once it ends (the page shows the outcome).
const script = document.getElementById("job-script");
const LIVE = new Set(["queued", "running"]);

function render(job) {
  document.getElementById("job-status").textContent = job.status;
  document.getElementById("job-message").textContent = job.message;
  const bar = document.getElementById("job-bar");
  const percent = document.getElementById("job-progress");
  if (job.progress_total > 0) {
    bar.max = job.progress_total;
    bar.value = Math.min(job.progress_done, job.progress_total);
    percent.textContent = `${Math.floor((100 * bar.value) / bar.max)} %`;
  } else if (LIVE.has(job.status)) {
    bar.removeAttribute("value");  // no total known yet: an indeterminate bar
    percent.textContent = "";
  }
}

async function poll() {
  try {
    const response = await fetch(script.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (response.ok) {
      const job = await response.json();
      render(job);
      if (!LIVE.has(job.status)) {
        window.location.reload();
        return;
      }
    }
  } catch (err) {
    console.warn("job poll failed", err);
  }
  setTimeout(poll, 1500);
}

const initial = JSON.parse(document.getElementById("job-status-data").textContent);
render(initial);
if (LIVE.has(initial.status)) setTimeout(poll, 1500);
