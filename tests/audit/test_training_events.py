"""The training side's audited changes: runs started, retried, cancelled, succeeded and failed (the last
two by the system), and rounds started and retried. The stage itself is replaced by a stub: what is
checked is the bookkeeping around it."""

import pytest
from django.utils import timezone

import training.ml
from audit.models import Action, AuditEvent
from core.errors import ServiceError
from labeling.services.exports import snapshot_create
from training import dispatch
from training.models import ModelKind, ModelVersion, Round, RoundStatus, RunStatus, TrainingRun
from training.services.execution import run_execute
from training.services.rounds import round_retry, round_start
from training.services.runs import run_cancel, run_retry, run_start, runs_reap_stale

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(settings, monkeypatch):
    """No broker, and nothing sent anywhere: the tasks sent are only listed."""
    settings.CELERY_BROKER_URL = ""
    sent = []
    monkeypatch.setattr(dispatch, "send", lambda task, *args: sent.append((task.name, args)) or None)
    return sent


@pytest.fixture
def inputs(media):
    base = ModelVersion.objects.create(name="base", kind=ModelKind.BASE, checkpoint=str(media / "base"))
    return {"kind": "sft", "base_model": base, "snapshots": [snapshot_create(kind="sft", filters={})]}


def run_events(events):
    return [e for e in events() if e[1].startswith("run.")]


def test_starting_a_run(queue, inputs, researcher, events):
    run = run_start(created_by=researcher, **inputs)
    assert run_events(events) == [("sci", Action.RUN_STARTED, str(run.pk))]
    event = AuditEvent.objects.get(action=Action.RUN_STARTED)
    assert event.details["kind"] == "sft" and event.details["snapshots"] == [inputs["snapshots"][0].pk]


def test_a_refused_run_records_nothing(queue, inputs, researcher):
    with pytest.raises(ServiceError, match="a ppo run needs a prompts dataset snapshot"):
        run_start(**{**inputs, "kind": "ppo"}, created_by=researcher)
    assert not AuditEvent.objects.filter(action__startswith="run.").exists()


def test_cancelling_and_retrying_a_run(queue, inputs, researcher, batch_admin, events):
    run = run_start(created_by=batch_admin, **inputs)
    run_cancel(run=run, actor=researcher)
    again = run_retry(run=TrainingRun.objects.get(pk=run.pk), created_by=researcher)
    assert run_events(events) == [
        ("boss", Action.RUN_STARTED, str(run.pk)),
        ("sci", Action.RUN_CANCELLED, str(run.pk)),
        ("sci", Action.RUN_RETRIED, str(again.pk)),
    ]
    assert AuditEvent.objects.get(action=Action.RUN_RETRIED).details["retry_of"] == run.pk


def test_a_run_that_succeeds_is_recorded_by_the_system(queue, inputs, monkeypatch, events):
    monkeypatch.setattr(training.ml, "run_stage", lambda kind, config, **kw: {"train_loss": 0.5})
    run = run_start(**inputs)
    run = run_execute(run_id=run.pk)
    assert run.status == RunStatus.SUCCEEDED
    assert run_events(events)[-1] == (None, Action.RUN_SUCCEEDED, str(run.pk))
    assert AuditEvent.objects.get(action=Action.RUN_SUCCEEDED).details == {
        "model_version": run.output_model_id
    }


def test_a_run_that_fails_is_recorded_by_the_system(queue, inputs, monkeypatch, events):
    def broken(kind, config, **kw):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(training.ml, "run_stage", broken)
    run = run_execute(run_id=run_start(**inputs).pk)
    assert run.status == RunStatus.FAILED
    assert run_events(events)[-1] == (None, Action.RUN_FAILED, str(run.pk))
    event = AuditEvent.objects.get(action=Action.RUN_FAILED)
    assert event.details == {"error": "RuntimeError: CUDA out of memory"}
    assert event.object_repr == f"sft run {run.pk} (failed)"


def test_a_run_whose_worker_died_is_failed_by_the_reaper(inputs, settings, events):
    settings.TRAINING_STALE_SECONDS = 60
    stale = TrainingRun.objects.create(
        kind="sft",
        base_model=inputs["base_model"],
        status=RunStatus.RUNNING,
        heartbeat_at=timezone.now() - timezone.timedelta(seconds=120),
    )
    assert runs_reap_stale() == [stale.pk]
    assert runs_reap_stale() == []
    assert run_events(events) == [(None, Action.RUN_FAILED, str(stale.pk))]
    event = AuditEvent.objects.get(action=Action.RUN_FAILED)
    assert "stopped responding" in event.details["error"] and event.object_repr.endswith("(failed)")


def test_starting_and_retrying_a_round(queue, media, researcher, batch_admin, events):
    rnd = round_start(method="dpo", created_by=researcher)
    Round.objects.filter(pk=rnd.pk).update(status=RoundStatus.FAILED, step="sft")
    round_retry(rnd=Round.objects.get(pk=rnd.pk), actor=batch_admin)
    assert events() == [
        ("sci", Action.ROUND_STARTED, str(rnd.pk)),
        ("boss", Action.ROUND_RETRIED, str(rnd.pk)),
    ]
    assert AuditEvent.objects.get(action=Action.ROUND_STARTED).details["method"] == "dpo"


def test_a_round_failed_by_a_person_or_by_its_step_is_recorded(
    queue, media, researcher, batch_admin, events, monkeypatch
):
    from training.services import rounds

    rnd = round_start(method="dpo", created_by=researcher)
    rounds.round_fail(rnd=rnd, error="failed by start_round --fail-stuck\nmore lines", actor=batch_admin)
    event = AuditEvent.objects.get(action=Action.ROUND_FAILED)
    assert (event.actor.username, event.object_id) == ("boss", str(rnd.pk))
    assert event.details == {"step": rnd.step, "error": "failed by start_round --fail-stuck"}

    round_retry(rnd=Round.objects.get(pk=rnd.pk), actor=researcher)
    step = Round.objects.get(pk=rnd.pk).step

    def refuse(*args):
        raise ServiceError("the snapshot is empty")

    monkeypatch.setitem(rounds.STEP_ACTIONS, step, refuse)
    rounds.round_advance(round_id=rnd.pk)
    assert Round.objects.get(pk=rnd.pk).status == RoundStatus.FAILED
    by_system = AuditEvent.objects.filter(action=Action.ROUND_FAILED).order_by("pk").last()
    assert by_system.actor is None and by_system.details == {
        "step": step,
        "error": f"step '{step}': the snapshot is empty",
    }
