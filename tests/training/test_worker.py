"""With a REAL Celery worker process on Redis and Postgres: a whole round, cancel, and kill -9."""

import pytest

from labeling.services.exports import snapshot_create
from training.ml.checkpoints import last_checkpoint
from training.models import ModelVersion, RoundStatus, RunStatus, TrainingRun
from training.services.registry import base_model_get_or_create
from training.services.rounds import round_start
from training.services.runs import run_cancel, run_retry, run_start
from training.tasks import reap_stale_runs

from .conftest import FAST_STAGES, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LONG_SFT = {**FAST_STAGES["sft"], "max_steps": 100000, "save_steps": 1}


def fresh(obj):
    obj.refresh_from_db()
    return obj


def test_a_whole_round_on_a_real_worker(worker, demo_data):
    rnd = round_start(method="ppo", config={"stage_config": FAST_STAGES, "prompt_limit": 3, "k": 3})
    wait_for(lambda: fresh(rnd).status != RoundStatus.RUNNING, what=f"round to end\n{worker.tail()}")
    assert rnd.status == RoundStatus.SUCCEEDED, rnd.error + worker.tail()
    policy = ModelVersion.objects.get(pk=rnd.state["models"]["policy"])
    assert [m.kind for m in (policy, policy.parent, policy.parent.parent)] == ["ppo", "sft", "base"]
    assert all(r.worker_task_id for r in TrainingRun.objects.filter(round=rnd))
    tasks = rnd.batch.tasks.all()
    assert tasks.count() == 3
    for task in tasks:
        assert set(task.completions.values_list("model_version", flat=True)) == {policy.pk}


def _running_sft(worker):
    base = base_model_get_or_create()
    run = run_start(
        kind="sft", base_model=base, snapshots=[snapshot_create(kind="sft", filters={})], config=LONG_SFT
    )
    wait_for(
        lambda: fresh(run).status == RunStatus.RUNNING and run.progress_step >= 2,
        what=f"run to make progress\n{worker.tail()}",
    )
    return run


def test_cancel_mid_run(worker, demo_data):
    run = _running_sft(worker)
    run_cancel(run=run)
    wait_for(lambda: fresh(run).status != RunStatus.RUNNING, what="run to stop")
    assert run.status == RunStatus.CANCELLED
    assert run.output_model is None and not ModelVersion.objects.filter(kind="sft").exists()


def test_kill_9_of_the_worker_fails_the_run_then_retry_resumes(worker, demo_data):
    run = _running_sft(worker)
    worker.kill9()
    # The periodic reaper (every minute in production; here the stale limit is 4 s) marks it failed.
    wait_for(lambda: reap_stale_runs.apply().get() == [run.pk], what="the reaper to fail the run", every=1)
    run = fresh(run)
    assert run.status == RunStatus.FAILED and "stopped responding" in run.error
    assert not ModelVersion.objects.filter(kind="sft").exists()  # nothing partial was registered
    resume_point = last_checkpoint(
        run.config["output_dir"]
    )  # the newest COMPLETE one: the kill may cut a save
    assert resume_point is not None, "the killed run had written checkpoints"

    worker.start()  # a new worker picks the retry up and resumes from the last checkpoint
    retry = run_retry(run=run)
    wait_for(
        lambda: fresh(retry).status == RunStatus.RUNNING and retry.progress_step >= 1,
        what=f"retry to run\n{worker.tail()}",
    )
    assert f"resuming from {resume_point}" in retry.log_tail
    resumed_at = int(resume_point.name.split("-")[1])
    assert retry.progress_step >= resumed_at  # it reports the checkpoint's step first, never step 0
    wait_for(lambda: fresh(retry).progress_step > resumed_at, what=f"retry to train on\n{worker.tail()}")
    run_cancel(run=retry)
    wait_for(lambda: fresh(retry).status != RunStatus.RUNNING, what="retry to stop")
