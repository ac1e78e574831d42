"""A round caught at a given moment, written straight as rows (no training): the round pages' tests and
the browser test arrange their rounds with it."""

from datetime import timedelta

from django.utils import timezone

from training.models import ModelVersion, Round, RoundStatus, RunStatus, TrainingRun
from training.round_state import RoundState


def base_model() -> ModelVersion:
    return ModelVersion.objects.get_or_create(
        name="base-for-pages", defaults={"kind": "base", "checkpoint": "/nowhere"}
    )[0]


def run_row(
    rnd: Round, kind: str, *, status: str, started_ago: float, took: float | None = None, step=0, total=0
) -> TrainingRun:
    """A run of `rnd` that started `started_ago` seconds ago and, when `took` is given, finished after it."""
    now = timezone.now()
    started = now - timedelta(seconds=started_ago)
    run = TrainingRun.objects.create(
        kind=kind,
        base_model=base_model(),
        round=rnd,
        status=status,
        started_at=started,
        finished_at=started + timedelta(seconds=took) if took is not None else None,
        progress_step=step,
        progress_total=total,
    )
    TrainingRun.objects.filter(pk=run.pk).update(created_at=started)  # auto_now_add: set it afterwards
    run.refresh_from_db()
    return run


def round_row(*, number: int, status: str = RoundStatus.RUNNING, started_ago: float = 300) -> Round:
    rnd = Round.objects.create(number=number, method="ppo", status=status, step="export")
    Round.objects.filter(pk=rnd.pk).update(created_at=timezone.now() - timedelta(seconds=started_ago))
    rnd.refresh_from_db()
    return rnd


def round_in_rm(*, number: int = 1, rm_step: int = 5, rm_total: int = 10) -> Round:
    """Export and SFT done (the SFT run took 60 s), the reward model half way after 50 s."""
    rnd = round_row(number=number, started_ago=200)
    sft = run_row(rnd, "sft", status=RunStatus.SUCCEEDED, started_ago=190, took=60, step=3, total=3)
    rm = run_row(rnd, "rm", status=RunStatus.RUNNING, started_ago=50, step=rm_step, total=rm_total)
    rnd.step = "rm"
    rnd.state = RoundState(done=["export", "sft"], runs={"sft": [sft.pk], "rm": [rm.pk]}).to_json()
    rnd.save(update_fields=["step", "state"])
    return rnd


def finished_round(*, number: int, seconds: dict[str, float]) -> Round:
    """A succeeded PPO round whose training and sampling steps took `seconds` each, one after the other."""
    total = sum(seconds.values()) + 20
    rnd = round_row(number=number, status=RoundStatus.SUCCEEDED, started_ago=total + 1000)
    state = RoundState(done=["export", "sft", "rm", "ppo", "generate", "batch"])
    ago = total + 990
    for step, took in seconds.items():
        run = run_row(rnd, step, status=RunStatus.SUCCEEDED, started_ago=ago, took=took, step=1, total=1)
        state.runs[step] = [run.pk]
        ago -= took
    rnd.state, rnd.step = state.to_json(), ""
    rnd.finished_at = timezone.now() - timedelta(seconds=ago - 5)
    rnd.save(update_fields=["state", "step", "finished_at"])
    return rnd
