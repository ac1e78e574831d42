"""Rounds never wedge on one lost message: the recovery sweep, runs queued too long, a round whose process
is gone (no broker), and start_round's --resume and --fail-stuck. Driven through the services and the
command; sends go to a real Redis test db that no worker reads, so what was sent stays there to look at."""

import io
import json
import os
import socket
import subprocess
import threading

import pytest
import redis
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from labeling.models import Batch
from labeling.services.exports import snapshot_create
from tests.factories import PromptFactory
from training.models import ModelVersion, Round, RoundStatus, RunStatus, TrainingRun
from training.services.recovery import recover_lost_messages
from training.services.registry import base_model_get_or_create
from training.services.rounds import DEFAULTS
from training.services.runs import runs_reap_stale

from .conftest import FAST_STAGES, REDIS_URL

pytestmark = pytest.mark.django_db
DOWN = "redis://127.0.0.1:1/0"  # nothing listens there: the broker is "down"


@pytest.fixture
def queue(settings):
    """A broker (the Redis test db) that no worker reads: what is sent stays in its lists."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.TASKS_INLINE = False
    return client


def sent(queue, name: str) -> list[dict]:
    """The task messages waiting in a queue: their headers (task name, id, args)."""
    return [json.loads(raw)["headers"] for raw in queue.lrange(name, 0, -1)]


def ago(seconds: float):
    return timezone.now() - timezone.timedelta(seconds=seconds)


def dead_process() -> str:
    ended = subprocess.Popen(["true"])
    ended.wait()  # reaped by us: its pid answers no more
    return f"{socket.gethostname()}:{ended.pid}"


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def model(kind: str, base: ModelVersion) -> ModelVersion:
    return ModelVersion.objects.create(
        name=f"{kind}-{base.pk}", kind=kind, parent=base, checkpoint=base.checkpoint
    )


def a_round(**fields) -> Round:
    fields.setdefault("config", {**DEFAULTS, "stage_config": FAST_STAGES})
    return Round.objects.create(number=1, status=RoundStatus.RUNNING, **fields)


def run_of(rnd: Round, kind: str, status: str, base: ModelVersion, **fields) -> TrainingRun:
    return TrainingRun.objects.create(kind=kind, base_model=base, status=status, round=rnd, **fields)


def round_after_generation(media) -> Round:
    """A DPO round whose generate run succeeded, but whose advance (to the batch step) was lost."""
    base = base_model_get_or_create()
    policy = model("dpo", base)
    rnd = a_round(
        method="dpo",
        step="generate",
        config={**DEFAULTS, "k": 2},
        state={"done": ["export", "sft", "dpo"], "models": {"policy": policy.pk, "sft": policy.pk}},
    )
    folder = media / "runs" / "gen"
    folder.mkdir(parents=True)
    lines = [{"prompt_id": PromptFactory().pk, "completions": ["one", "two"]} for _ in range(3)]
    (folder / "completions.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    run = run_of(rnd, "generate", RunStatus.SUCCEEDED, policy, config={"output_dir": str(folder)})
    rnd.state["runs"] = {"generate": [run.pk]}
    rnd.save(update_fields=["state"])
    return rnd


def round_after_sft(media) -> tuple[Round, ModelVersion]:
    """A PPO round whose SFT run succeeded, but whose advance (to the RM step) was lost."""
    base = base_model_get_or_create()
    snaps = {kind: snapshot_create(kind=kind, filters={}).pk for kind in ("sft", "rm_rankings", "prompts")}
    sft = model("sft", base)
    rnd = a_round(method="ppo", step="sft", state={"done": ["export"], "snapshots": snaps})
    run = run_of(rnd, "sft", RunStatus.SUCCEEDED, base, output_model=sft)
    rnd.state["runs"] = {"sft": [run.pk]}
    rnd.save(update_fields=["state"])
    return rnd, sft


def test_the_sweep_takes_a_round_on_after_a_lost_advance_once(media, queue):
    rnd = round_after_generation(media)
    assert recover_lost_messages()["advanced"] == [rnd.pk]
    assert recover_lost_messages()["advanced"] == []
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SUCCEEDED, rnd.error
    assert Batch.objects.get() == rnd.batch and rnd.batch.tasks.count() == 3


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_advance_a_round_once(media, queue):
    rnd = round_after_generation(media)
    start = threading.Barrier(2)
    outcomes, errors = [], []

    def sweep() -> None:
        try:
            start.wait()
            outcomes.append(recover_lost_messages()["advanced"])
        except Exception as exc:  # shown by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(outcomes) == [[], [rnd.pk]]
    assert Batch.objects.count() == 1
    assert Round.objects.get(pk=rnd.pk).status == RoundStatus.SUCCEEDED


@pytest.mark.parametrize("go_on", ["sweep", "start_round --resume"])
def test_a_lost_advance_after_a_training_step_starts_the_next_run_once(
    media, queue, settings, go_on, django_capture_on_commit_callbacks
):
    rnd, sft = round_after_sft(media)
    settings.CELERY_BROKER_URL = DOWN  # an outage never fails the round: it waits for the queue
    recover_lost_messages()
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.RUNNING and not TrainingRun.objects.filter(kind="rm").exists()

    settings.CELERY_BROKER_URL = REDIS_URL
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):  # the run is sent once its row commits
            if go_on == "sweep":
                recover_lost_messages()
            else:
                call_command("start_round", "--resume", stdout=io.StringIO())
    rm = TrainingRun.objects.get(kind="rm")
    assert rm.status == RunStatus.QUEUED and rm.base_model == sft and rm.round_id == rnd.pk
    # The sweep sent it once; --resume sends a queued run again, at once (run_execute skips a duplicate).
    assert {(m["task"], m["argsrepr"]) for m in sent(queue, "gpu")} == {
        ("training.tasks.execute_run", f"({rm.pk},)")
    }
    rnd.refresh_from_db()
    assert rnd.state["done"] == ["export", "sft"] and rnd.step == "rm"


def test_a_run_queued_too_long_is_sent_again_once(media, queue, settings, django_capture_on_commit_callbacks):
    settings.TRAINING_RESEND_SECONDS = 600
    base = base_model_get_or_create()
    lost = TrainingRun.objects.create(kind="sft", base_model=base, sent_at=ago(700))
    recent = TrainingRun.objects.create(kind="sft", base_model=base, sent_at=ago(60))
    with django_capture_on_commit_callbacks(execute=True):
        assert recover_lost_messages()["resent"] == [lost.pk]
        assert recover_lost_messages()["resent"] == []  # sent just now: not again before its time
    assert [m["argsrepr"] for m in sent(queue, "gpu")] == [f"({lost.pk},)"]
    assert TrainingRun.objects.get(pk=recent.pk).status == RunStatus.QUEUED


def test_a_run_queued_too_long_while_the_queue_is_down_is_failed_and_ends_its_round(media, settings):
    settings.CELERY_BROKER_URL = DOWN
    settings.TRAINING_RESEND_SECONDS = 600
    settings.TRAINING_QUEUED_LIMIT_SECONDS = 3600
    base = base_model_get_or_create()
    rnd = a_round(method="ppo", step="sft", state={"done": ["export"]})
    lost = run_of(rnd, "sft", RunStatus.QUEUED, base, sent_at=ago(7200))
    rnd.state["runs"] = {"sft": [lost.pk]}
    rnd.save(update_fields=["state"])
    waiting = TrainingRun.objects.create(kind="sft", base_model=base, sent_at=ago(1200))
    TrainingRun.objects.filter(pk=lost.pk).update(created_at=ago(7200))
    TrainingRun.objects.filter(pk=waiting.pk).update(created_at=ago(1200))

    outcome = recover_lost_messages()
    assert outcome["failed"] == [lost.pk] and outcome["advanced"] == [rnd.pk]
    lost.refresh_from_db()
    assert lost.status == RunStatus.FAILED
    assert "never started" in lost.error and "TRAINING_QUEUED_LIMIT_SECONDS (3600 s)" in lost.error
    assert TrainingRun.objects.get(pk=waiting.pk).status == RunStatus.QUEUED  # within its limit
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.FAILED and "never started" in rnd.error


def test_a_run_ending_while_the_broker_is_down_leaves_its_round_to_the_sweep(
    media, queue, settings, django_capture_on_commit_callbacks
):
    settings.TRAINING_STALE_SECONDS = 60
    base = base_model_get_or_create()
    rnd = a_round(method="ppo", step="sft", state={"done": ["export"]})
    dead = run_of(rnd, "sft", RunStatus.RUNNING, base, worker=dead_process(), heartbeat_at=ago(600))
    rnd.state["runs"] = {"sft": [dead.pk]}
    rnd.save(update_fields=["state"])

    settings.CELERY_BROKER_URL = DOWN
    with django_capture_on_commit_callbacks(execute=True):  # what a send deferred to a commit does, too
        assert runs_reap_stale() == [dead.pk]  # its round's advance could not be sent: no error for that
    assert Round.objects.get(pk=rnd.pk).status == RoundStatus.RUNNING

    settings.CELERY_BROKER_URL = REDIS_URL
    assert recover_lost_messages()["advanced"] == [rnd.pk]
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.FAILED and "stopped responding" in rnd.error


def killed_in_process_round(media) -> tuple[Round, TrainingRun]:
    """What a killed `start_round --wait` without a broker leaves: a running round and run whose process
    is gone."""
    worker = dead_process()
    rnd = a_round(method="ppo", step="sft", state={"done": ["export"]}, worker=worker)
    run = run_of(
        rnd, "sft", RunStatus.RUNNING, base_model_get_or_create(), worker=worker, heartbeat_at=ago(5)
    )
    rnd.state["runs"] = {"sft": [run.pk]}
    rnd.save(update_fields=["state"])
    return rnd, run


def test_a_round_left_by_a_killed_start_is_failed_at_the_next_start(media, inline_tasks):
    rnd, run = killed_in_process_round(media)
    out = io.StringIO()
    with pytest.raises(CommandError, match="round 2 failed at step 'export'"):  # nothing labeled here
        call_command("start_round", stdout=out)
    assert "round 1 marked failed" in out.getvalue() and "round 2 started" in out.getvalue()
    rnd.refresh_from_db()
    run.refresh_from_db()
    assert rnd.status == RoundStatus.FAILED and "is gone" in rnd.error and "step 'sft'" in rnd.error
    assert run.status == RunStatus.FAILED and "stopped with round 1" in run.error


def test_a_web_start_fails_a_round_whose_process_is_gone_first(media, inline_tasks, researcher, client):
    rnd, _ = killed_in_process_round(media)
    client.force_login(researcher)
    response = client.post(reverse("api:round-list"), {}, content_type="application/json")
    assert response.status_code == 201, response.content
    assert Round.objects.get(pk=rnd.pk).status == RoundStatus.FAILED
    assert Round.objects.filter(number=2).exists()


def test_a_round_whose_process_lives_is_not_taken_for_gone(media, inline_tasks):
    rnd = a_round(method="ppo", step="sft", state={"done": ["export"]}, worker=this_process())
    with pytest.raises(CommandError, match="--resume goes on with it, start_round --fail-stuck fails it"):
        call_command("start_round", stdout=io.StringIO())
    assert Round.objects.get(pk=rnd.pk).status == RoundStatus.RUNNING and Round.objects.count() == 1


def test_start_round_fail_stuck_fails_the_running_round_and_starts_a_new_one(media, queue):
    base = base_model_get_or_create()
    rnd = a_round(method="ppo", step="sft", state={"done": ["export"]})
    training = run_of(rnd, "sft", RunStatus.RUNNING, base, worker=this_process(), heartbeat_at=timezone.now())
    waiting = run_of(rnd, "sft", RunStatus.QUEUED, base)
    out = io.StringIO()
    call_command("start_round", "--fail-stuck", stdout=out)
    assert "round 1 marked failed (--fail-stuck)" in out.getvalue() and "round 2 started" in out.getvalue()
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.FAILED and "--fail-stuck" in rnd.error
    training.refresh_from_db()
    assert training.cancel_requested  # alive: asked to stop at its next step
    assert TrainingRun.objects.get(pk=waiting.pk).status == RunStatus.FAILED
    assert Round.objects.get(number=2).status == RoundStatus.RUNNING


def test_start_round_resume_takes_over_a_round_whose_process_is_gone(media, inline_tasks):
    """The killed round goes on here from its step: its generate run is made again, then the batch."""
    base = base_model_get_or_create()
    policy = model("dpo", base)
    for _ in range(3):
        PromptFactory()
    prompts = snapshot_create(kind="prompts", filters={})
    worker = dead_process()
    rnd = a_round(
        method="dpo",
        step="generate",
        worker=worker,
        config={**DEFAULTS, "k": 2, "prompt_limit": 3, "stage_config": FAST_STAGES},
        state={
            "done": ["export", "sft", "dpo"],
            "snapshots": {"prompts": prompts.pk},
            "models": {"policy": policy.pk, "sft": policy.pk},
        },
    )
    killed = run_of(
        rnd,
        "generate",
        RunStatus.RUNNING,
        policy,
        worker=worker,
        config={"output_dir": str(media / "g"), "num_samples": 2, "max_prompts": 3},
    )
    killed.snapshots.set([prompts])
    rnd.state["runs"] = {"generate": [killed.pk]}
    rnd.save(update_fields=["state"])

    out = io.StringIO()
    call_command("start_round", "--resume", stdout=out)
    assert "round 1 resumed from step 'generate'" in out.getvalue() and "succeeded" in out.getvalue()
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SUCCEEDED, rnd.error
    assert Round.objects.count() == 1 and rnd.batch.tasks.count() == 3
    again = TrainingRun.objects.get(round=rnd, status=RunStatus.SUCCEEDED)
    assert again.config["output_dir"] == killed.config["output_dir"]


def test_a_pid_used_again_by_another_process_is_not_taken_for_the_one_that_ran(media):
    """A restarted container (same host name, pids from 1 again) can give a new process the old one's pid:
    the start time recorded beside the pid tells them apart. Records without one are checked by pid."""
    from training.services.liveness import _alive_here
    from training.services.liveness import this_process as recorded

    me = recorded()
    host_pid, _, started = me.partition("@")
    assert host_pid == this_process() and float(started) > 0
    assert _alive_here(me) is True
    assert (
        _alive_here(f"{host_pid}@{float(started) - 3600:.2f}") is False
    )  # same pid, started an hour earlier
    assert _alive_here(host_pid) is True  # an old record: by pid alone
    assert _alive_here(f"{dead_process()}@{started}") is False
    assert _alive_here(f"elsewhere:{os.getpid()}@{started}") is None  # another host: asked through the broker
