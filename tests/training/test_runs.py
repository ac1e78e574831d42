"""Training runs in-process (the task bodies run inline): lifecycle, registry, reaper, validation."""

import pytest
from django.urls import reverse
from django.utils import timezone

from core.dispatch import QueueUnavailable
from core.errors import ServiceError
from labeling.services.exports import snapshot_create
from training.models import ModelVersion, Round, RunStatus, TrainingRun
from training.services.registry import base_model_get_or_create, lineage
from training.services.rounds import round_start
from training.services.runs import run_cancel, run_retry, run_start, runs_reap_stale
from training.services.stages import build_config

from .conftest import FAST_STAGES

pytestmark = pytest.mark.django_db


def test_an_sft_run_registers_a_model_with_its_lineage(media, demo_data, inline_tasks):
    base = base_model_get_or_create()
    snap = snapshot_create(kind="sft", filters={})
    run = run_start(kind="sft", base_model=base, snapshots=[snap], config=FAST_STAGES["sft"])
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    model = run.output_model
    assert model.kind == "sft" and model.parent == base
    assert list(model.snapshots.all()) == [snap]
    assert (media / "runs" / f"run-{run.pk}" / "config.json").exists()
    assert run.metrics_history and run.progress_step == run.progress_total > 0
    assert lineage(model) == [model, base]


def test_the_base_model_is_registered_once(media):
    assert base_model_get_or_create() == base_model_get_or_create()
    assert ModelVersion.objects.filter(kind="base").count() == 1


def test_a_run_without_the_data_it_needs_is_refused(media, demo_data):
    base = base_model_get_or_create()
    prompts = snapshot_create(kind="prompts", filters={})
    with pytest.raises(ServiceError, match="needs a sft dataset snapshot"):
        run_start(kind="sft", base_model=base, snapshots=[prompts])
    with pytest.raises(ServiceError, match="needs a reward model"):
        run_start(kind="ppo", base_model=base, snapshots=[prompts])
    assert TrainingRun.objects.count() == 0


def test_an_sft_run_takes_a_reward_model_only_to_pick_its_epoch(
    media, demo_data, settings, client, researcher
):
    # Queued, not trained: the config is what is checked.
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = "", False
    base = base_model_get_or_create()
    snap = snapshot_create(kind="sft", filters={})
    with pytest.raises(ServiceError, match="must be a reward model version") as refused:
        run_start(kind="sft", base_model=base, snapshots=[snap], reward_model=base)
    assert refused.value.field == "reward_model" and not TrainingRun.objects.exists()

    rm = ModelVersion.objects.create(name="rm-1", kind="rm", checkpoint=str(media / "rm-1"), parent=base)
    run = run_start(kind="sft", base_model=base, snapshots=[snap], reward_model=rm)
    assert build_config(run)[1]["selection_reward_model"] == rm.checkpoint
    client.force_login(researcher)
    page = client.get(reverse("training:run", args=[run.pk])).content.decode()
    assert "epoch picked by reward model" in page and ">rm-1</a>" in page
    plain = run_start(kind="sft", base_model=base, snapshots=[snap])
    assert "selection_reward_model" not in build_config(plain)[1]


def test_a_failing_stage_marks_the_run_failed_and_registers_nothing(media, demo_data, inline_tasks):
    base = base_model_get_or_create()
    snap = snapshot_create(kind="sft", filters={})
    run = run_start(kind="sft", base_model=base, snapshots=[snap], config={"splits": "no_such_split"})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "no_such_split" in run.error
    assert ModelVersion.objects.filter(kind="sft").count() == 0


def test_cancelling_a_queued_run_stops_it_before_it_starts(media, demo_data, settings):
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = False
    base = base_model_get_or_create()
    run = TrainingRun.objects.create(kind="sft", base_model=base, config={"output_dir": str(media / "x")})
    run_cancel(run=run)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.cancel_requested
    with pytest.raises(ServiceError, match="already cancelled"):
        run_cancel(run=run)


def test_the_reaper_fails_runs_with_a_stale_heartbeat_only(media, settings):
    settings.TRAINING_STALE_SECONDS = 60
    base = base_model_get_or_create()
    stale = TrainingRun.objects.create(
        kind="sft",
        base_model=base,
        status=RunStatus.RUNNING,
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=120),
    )
    fresh = TrainingRun.objects.create(
        kind="sft", base_model=base, status=RunStatus.RUNNING, heartbeat_at=timezone.now()
    )
    assert runs_reap_stale() == [stale.pk]
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == RunStatus.FAILED and "stopped responding" in stale.error
    assert fresh.status == RunStatus.RUNNING


def test_retry_reuses_the_output_folder_so_training_resumes(media, demo_data, inline_tasks):
    base = base_model_get_or_create()
    snap = snapshot_create(kind="sft", filters={})
    failed = TrainingRun.objects.create(
        kind="sft",
        base_model=base,
        status=RunStatus.FAILED,
        config={"output_dir": str(media / "runs" / "old"), **FAST_STAGES["sft"]},
    )
    failed.snapshots.set([snap])
    new = run_retry(run=failed)
    new.refresh_from_db()
    assert new.config["output_dir"] == failed.config["output_dir"]
    assert new.status == RunStatus.SUCCEEDED, new.error


def test_an_unreachable_queue_is_reported_and_nothing_is_stored(media, demo_data, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there: Redis is "down"
    base = base_model_get_or_create()
    snap = snapshot_create(kind="sft", filters={})
    with pytest.raises(QueueUnavailable, match="queue is unreachable"):
        run_start(kind="sft", base_model=base, snapshots=[snap])
    with pytest.raises(QueueUnavailable):
        round_start(method="ppo")
    assert TrainingRun.objects.count() == 0 and Round.objects.count() == 0


def stale_run(base, worker: str, task_id: str = "") -> TrainingRun:
    return TrainingRun.objects.create(
        kind="sft",
        base_model=base,
        status=RunStatus.RUNNING,
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=600),
        worker=worker,
        worker_task_id=task_id,
    )


def test_the_reaper_leaves_a_run_whose_process_is_alive(media, settings):
    """A database outage stops the heartbeat, not the training: a stale heartbeat alone fails nothing."""
    import os
    import socket
    import subprocess

    settings.TRAINING_STALE_SECONDS = 60
    settings.CELERY_BROKER_URL = ""
    base = base_model_get_or_create()
    alive = stale_run(base, f"{socket.gethostname()}:{os.getpid()}")
    ended = subprocess.Popen(["true"])
    ended.wait()  # reaped by us: its pid answers no more
    dead = stale_run(base, f"{socket.gethostname()}:{ended.pid}")
    assert runs_reap_stale() == [dead.pk]
    alive.refresh_from_db()
    assert alive.status == RunStatus.RUNNING


def test_the_reaper_fails_nothing_it_cannot_ask_about(media, settings):
    """A run on another host is asked about through the broker; with the broker down, nothing is reaped."""
    settings.TRAINING_STALE_SECONDS = 60
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    run = stale_run(base_model_get_or_create(), "gpu-box-7:4242", task_id="abc")
    assert runs_reap_stale() == []
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING
