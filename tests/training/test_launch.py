"""A REAL Celery worker that launches each stage through `accelerate launch` in two CPU processes (gloo):
progress, log tail and cancel through the run page and the API; a killed rank fails the run; a retry
resumes from the last complete checkpoint.
"""

import os
import signal
from pathlib import Path

import psutil
import pytest
from django.urls import reverse

from labeling.services.exports import snapshot_create
from training.ml.checkpoints import last_checkpoint
from training.models import ModelVersion, RunStatus, TrainingRun
from training.services.launch import AccelerateLaunch, launch_processes
from training.services.registry import base_model_get_or_create
from training.services.runs import run_retry
from training.services.stages import build_config
from training.tasks import reap_stale_runs

from .conftest import FAST_STAGES, REDIS_URL, WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LONG_SFT = {**FAST_STAGES["sft"], "max_steps": 100000, "save_steps": 1}
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


@pytest.fixture
def launching_worker(settings, media, tiny_base):
    """A real worker with TRAINING_LAUNCHER=accelerate (the test process only queues and reads)."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.TASKS_INLINE = False
    settings.TRAINING_STALE_SECONDS = 4
    process = WorkerProcess(media, tiny_base, stale_seconds=4)
    process.env.update(TRAINING_LAUNCHER="accelerate", TRAINING_LAUNCH_CONFIG="single-gpu")
    process.start()
    yield process
    process.stop()
    print(process.tail())


def start_sft(api, config: dict) -> int:
    """An SFT run on the tiny base model, started through the API with the two-process CPU config."""
    answer = api.post(
        "/api/v1/training-runs/",
        {
            "kind": "sft",
            "base_model": base_model_get_or_create().pk,
            "snapshots": [snapshot_create(kind="sft", filters={}).pk],
            "config": config,
            "launch_config": "cpu-ddp-2",
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert answer.data["launch_config"] == "cpu-ddp-2"
    return answer.data["id"]


def read(api, run_id: int) -> dict:
    return api.get(f"/api/v1/training-runs/{run_id}/").data


def until_finished(api, run_id: int, worker) -> dict:
    return wait_for(
        lambda: (r := read(api, run_id))["status"] in FINISHED and r,
        what=f"run {run_id} to end\n{worker.tail()}",
    )


def until_progress(api, run_id: int, worker, step: int = 2) -> dict:
    return wait_for(
        lambda: (r := read(api, run_id))["status"] == RunStatus.RUNNING and r["progress_step"] >= step and r,
        what=f"run {run_id} to make progress\n{worker.tail()}",
    )


def ranks(run_id: int) -> list[psutil.Process]:
    """The training processes of a run's launch, found by the stage config only that launch reads."""
    marker = f"launch-run-{run_id}"
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if marker in cmdline and "training.ml" in cmdline and "accelerate" not in cmdline:
            found.append(proc)
    return found


def rank_of(proc: psutil.Process) -> str:
    return proc.environ().get("RANK", "")


def test_a_launched_sft_run_reports_progress_and_log_tail_and_registers_its_model(
    launching_worker, demo_data, api, client, researcher
):
    run_id = start_sft(api, FAST_STAGES["sft"])
    run = until_finished(api, run_id, launching_worker)
    assert run["status"] == RunStatus.SUCCEEDED, run["error"] + launching_worker.tail()
    assert (run["progress_step"], run["progress_total"]) == (4, 4)
    assert "step 4/4" in run["log_tail"]  # the main rank's progress
    assert '"steps": 4' in run["log_tail"]  # the processes' own output: the CLI's metrics line
    model = ModelVersion.objects.get(pk=run["output_model"])
    assert model.kind == "sft" and model.metrics["steps"] == 4
    # Both ranks trained: each saved its own random state into the checkpoints.
    checkpoint = last_checkpoint(model.checkpoint)
    assert (checkpoint / "rng_state_0.pth").exists() and (checkpoint / "rng_state_1.pth").exists()

    client.force_login(researcher)
    page = client.get(reverse("training:run", args=[run_id])).content.decode()
    assert "cpu-ddp-2" in page
    status = client.get(reverse("training:run_status", args=[run_id])).json()
    assert status["step"] == 4 and "step 4/4" in status["log_tail"] and status["history"]


def test_a_cancel_from_the_api_stops_both_ranks_with_a_checkpoint(launching_worker, demo_data, api):
    run_id = start_sft(api, LONG_SFT)
    until_progress(api, run_id, launching_worker)
    assert sorted(rank_of(p) for p in ranks(run_id)) == ["0", "1"]
    assert api.post(f"/api/v1/training-runs/{run_id}/cancel/").status_code == 200
    run = until_finished(api, run_id, launching_worker)
    assert run["status"] == RunStatus.CANCELLED, run["error"]
    assert ranks(run_id) == []  # no rank trains on
    assert "cancelled" in run["log_tail"]
    checkpoint = last_checkpoint(TrainingRun.objects.get(pk=run_id).config["output_dir"])
    assert (checkpoint / "rng_state_0.pth").exists() and (checkpoint / "rng_state_1.pth").exists()
    assert not ModelVersion.objects.filter(kind="sft").exists()


def test_a_killed_rank_fails_the_run_and_a_retry_resumes_from_the_last_checkpoint(
    launching_worker, demo_data, api, client, researcher
):
    run_id = start_sft(api, LONG_SFT)
    until_progress(api, run_id, launching_worker)
    (rank1,) = [p for p in ranks(run_id) if rank_of(p) == "1"]
    os.kill(rank1.pid, signal.SIGKILL)

    run = until_finished(api, run_id, launching_worker)
    assert run["status"] == RunStatus.FAILED
    assert "the training processes failed" in run["error"]
    assert "Signal 9" in run["error"] or "SIGKILL" in run["error"]  # the launcher's last lines say which
    assert ranks(run_id) == []  # rank 0 did not stay behind, waiting for its peer
    assert not ModelVersion.objects.filter(kind="sft").exists()  # nothing partial was registered
    resume_point = last_checkpoint(TrainingRun.objects.get(pk=run_id).config["output_dir"])
    assert resume_point is not None

    client.force_login(researcher)
    client.post(reverse("training:run_retry", args=[run_id]))
    retry = TrainingRun.objects.exclude(pk=run_id).get()
    assert retry.launch_config == "cpu-ddp-2"
    until_progress(api, retry.pk, launching_worker, step=int(resume_point.name.split("-")[1]) + 1)
    # The whole launch log (the run's log tail is its last 8,000 characters, which the eval lines may fill).
    launch_log = Path(retry.config["output_dir"]) / f"launch-run-{retry.pk}" / "output.log"
    assert f"resuming from {resume_point}" in launch_log.read_text()
    client.post(reverse("training:run_cancel", args=[retry.pk]))  # the run page's cancel button
    assert until_finished(api, retry.pk, launching_worker)["status"] == RunStatus.CANCELLED
    assert ranks(retry.pk) == []
    assert Path(retry.config["output_dir"]) == Path(run["config"]["output_dir"])


def test_a_retry_stops_the_launch_a_killed_worker_left_running(launching_worker, demo_data, api):
    run_id = start_sft(api, LONG_SFT)
    until_progress(api, run_id, launching_worker)
    launching_worker.kill9()  # the worker only: its launch runs on in its own session
    orphans = ranks(run_id)
    assert sorted(rank_of(p) for p in orphans) == ["0", "1"]
    wait_for(lambda: reap_stale_runs.apply().get() == [run_id], what="the reaper to fail the run", every=1)

    launching_worker.start()
    retry = run_retry(run=TrainingRun.objects.get(pk=run_id))
    until_progress(api, retry.pk, launching_worker, step=1)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in orphans)
    assert ranks(run_id) == [] and sorted(rank_of(p) for p in ranks(retry.pk)) == ["0", "1"]
    api.post(f"/api/v1/training-runs/{retry.pk}/cancel/")
    assert until_finished(api, retry.pk, launching_worker)["status"] == RunStatus.CANCELLED


def test_a_launch_that_does_not_stop_in_its_grace_period_is_signalled_and_ends_cancelled(media, demo_data):
    """No worker: the launch itself, with no grace, so the cancel goes straight to SIGTERM."""
    run = TrainingRun.objects.create(
        kind="sft", base_model=base_model_get_or_create(), launch_config="cpu-ddp-2"
    )
    run.snapshots.set([snapshot_create(kind="sft", filters={})])
    run.config = {**LONG_SFT, "output_dir": str(media / "runs" / f"run-{run.pk}")}
    run.save(update_fields=["config"])
    launch = AccelerateLaunch(run=run, stage_kind="sft", stage_config=build_config(run)[1], grace_seconds=0)
    launch.start()
    try:
        progress = Path(run.config["output_dir"]) / "progress.jsonl"
        wait_for(lambda: progress.exists() and len(progress.read_text().splitlines()) >= 2, what="progress")
        launch.cancel()
        code = wait_for(lambda: launch.poll(), what="the launch to end")  # 3 is truthy; None is not
    finally:
        launch.kill()  # nothing left behind if the test fails
    assert code == 3
    assert launch_processes(launch.files.stage_config) == []
    assert "signal 15" in launch.files.log.read_text()  # the ranks were told by a signal, not by STOP alone
