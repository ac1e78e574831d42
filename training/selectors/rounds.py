"""A round as its page shows it: each step (training/services/rounds.py STEPS) with its state, the time it
took or has taken so far, and an estimate of what is left.

The times are read from rows the round already writes, so nothing new is stored: a step's runs carry
their created, started and finished times, the export ends when the first training run is created, and
the batch step starts when the last sampling run finishes. An estimate comes from the running step's own
progress rate when it has one, otherwise from the same step in earlier rounds of the same method.
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from django.utils import timezone

from ..models import Round, RoundStatus, RunStatus, TrainingRun
from ..round_state import RoundState
from ..services.rounds import STEPS
from .numbers import duration_words
from .runs import run_remaining

STEP_LABELS = {
    "export": "Export the labels (demonstrations, rankings, prompts)",
    "sft": "SFT: fine-tune the base model on the demonstrations",
    "rm": "Reward model: learn from the rankings",
    "ppo": "PPO: train the policy against the reward model",
    "dpo": "DPO: train the policy on the preference pairs",
    "generate": "Sample new outputs from the policy",
    "batch": "Open the next ranking batch",
}
HISTORY_ROUNDS = 3  # earlier rounds an estimate looks at


@dataclass
class StepProgress:
    name: str
    label: str
    state: str  # done, running, queued, failed, waiting (not started), skipped (the round ended first)
    seconds: float | None = None  # taken, or taken so far
    remaining: float | None = None  # estimate; 0 once done
    estimate_from: str = ""  # "its progress", "earlier rounds" or ""
    runs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RoundProgress:
    status: str
    step: str
    error: str
    steps: list[StepProgress]
    elapsed: float
    remaining: float | None  # None: some step has no estimate yet
    finished: bool

    def to_json(self) -> dict[str, Any]:
        """The fields, and each time in words as the page shows it (so the page and its script agree)."""
        data = asdict(self)
        for step, item in zip(data["steps"], self.steps, strict=True):
            step["took"], step["left"] = _took(item), _left(item)
        took = duration_words(self.elapsed)
        data["elapsed_words"] = f"took {took}" if self.finished else f"{took} so far"
        data["remaining_words"] = (
            ""
            if self.finished
            else "no estimate yet of what is left"
            if self.remaining is None
            else f"about {duration_words(self.remaining)} left"
        )
        return data


def _took(item: StepProgress) -> str:
    if item.seconds is None:
        return ""
    return f"{duration_words(item.seconds)}{' so far' if item.state in ('running', 'queued') else ''}"


def _left(item: StepProgress) -> str:
    if item.state in ("done", "skipped", "failed"):
        return ""
    if item.remaining is None:
        return "no estimate yet (no progress reported, no earlier round)"
    return f"about {duration_words(item.remaining)} left, from {item.estimate_from}"


def round_progress(rnd: Round, *, now: datetime | None = None) -> RoundProgress:
    now = now or timezone.now()
    state = rnd.round_state
    runs = _runs_of(state)
    history = _earlier_durations(rnd)
    steps = []
    for name in STEPS[rnd.method]:
        start, end = _span(rnd, state, runs, name)
        item = StepProgress(
            name=name, label=STEP_LABELS.get(name, name), state=_state(rnd, state, runs, name)
        )
        item.runs = [_run_brief(runs[pk]) for pk in state.runs.get(name, []) if pk in runs]
        if start is not None:
            item.seconds = ((end or now) - start).total_seconds() if item.state != "waiting" else None
        _estimate(item, [runs[pk] for pk in state.runs.get(name, []) if pk in runs], history, now)
        steps.append(item)
    end = rnd.finished_at or now
    left = [s.remaining for s in steps]
    return RoundProgress(
        status=rnd.status,
        step=rnd.step,
        error=rnd.error,
        steps=steps,
        elapsed=(end - rnd.created_at).total_seconds(),
        remaining=None if any(r is None for r in left) else sum(r or 0.0 for r in left),
        finished=rnd.status != RoundStatus.RUNNING,
    )


def _runs_of(state: RoundState) -> dict[int, TrainingRun]:
    ids = [pk for pks in state.runs.values() for pk in pks]
    return TrainingRun.objects.in_bulk(ids)


def _state(rnd: Round, state: RoundState, runs: dict[int, TrainingRun], name: str) -> str:
    if name in state.done:
        return "done"
    if name != rnd.step:
        return "waiting" if rnd.status == RoundStatus.RUNNING else "skipped"
    if rnd.status == RoundStatus.FAILED:
        return "failed"
    if rnd.status == RoundStatus.SUCCEEDED:
        return "done"
    mine = [runs[pk] for pk in state.runs.get(name, []) if pk in runs]
    if mine and all(r.status == RunStatus.QUEUED for r in mine):
        return "queued"
    return "running"


def _span(
    rnd: Round, state: RoundState, runs: dict[int, TrainingRun], name: str
) -> tuple[datetime | None, datetime | None]:
    """When the step started and (once it is over) ended, from the rows the round writes anyway."""
    finished = rnd.finished_at if rnd.status != RoundStatus.RUNNING else None
    if name == "export":
        later = [r.created_at for r in runs.values()]
        return rnd.created_at, (min(later) if later else finished)
    if name == "batch":
        sampled = [runs[pk].finished_at for pk in state.runs.get("generate", []) if pk in runs]
        if "generate" not in state.done or not sampled or None in sampled:
            return None, None
        return max(t for t in sampled if t is not None), (rnd.batch.created_at if rnd.batch else finished)
    mine = [runs[pk] for pk in state.runs.get(name, []) if pk in runs]
    if not mine:
        return None, None
    ends = [r.finished_at for r in mine]
    end = max(t for t in ends if t is not None) if None not in ends else finished
    return min(r.created_at for r in mine), end


def _run_brief(run: TrainingRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "step": run.progress_step,
        "total": run.progress_total,
    }


def _estimate(item: StepProgress, runs: list[TrainingRun], history: dict[str, float], now: datetime) -> None:
    """Fill item.remaining: 0 when done; from the runs' progress rate while they train; else from the same
    step in earlier rounds (less what it has taken so far); None when neither is known."""
    if item.state in ("done", "skipped", "failed"):
        item.remaining = 0.0 if item.state == "done" else None
        return
    rates = [run_remaining(r, now) for r in runs]
    if runs and all(r is not None for r in rates):
        item.remaining, item.estimate_from = sum(r or 0.0 for r in rates), "its progress"
        return
    if item.name in history:
        item.remaining = max(history[item.name] - (item.seconds or 0.0), 0.0)
        item.estimate_from = "earlier rounds"


def _earlier_durations(rnd: Round) -> dict[str, float]:
    """Step -> the median seconds it took in the last few succeeded rounds of the same method."""
    earlier = Round.objects.filter(
        method=rnd.method, status=RoundStatus.SUCCEEDED, created_at__lt=rnd.created_at
    ).order_by("-created_at")[:HISTORY_ROUNDS]
    taken: dict[str, list[float]] = {}
    for other in earlier:
        state = other.round_state
        runs = _runs_of(state)
        for name in STEPS[other.method]:
            start, end = _span(other, state, runs, name)
            if start is not None and end is not None:
                taken.setdefault(name, []).append((end - start).total_seconds())
    return {name: median(values) for name, values in taken.items()}
