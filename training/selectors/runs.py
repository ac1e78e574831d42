"""A run as its page shows it: the live status the page polls, and its config as a table of field, value
and the help text of training.ml's config dataclass (TRL style: every field has one)."""

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from training.ml.config import config_class

from ..models import RunKind, RunStatus, TrainingRun
from .numbers import duration_words, finite

# Keys a run's config may hold that training.ml does not read (training/services/run_settings.RUN_KEYS).
RUN_KEY_HELP = {
    "max_prompts": "At most this many prompts are sampled (the round's prompt limit).",
    "auto_eval_prompts": "Prompts of the automatic evaluation after a PPO or DPO run.",
}


def run_phase(run: TrainingRun) -> str:
    """What the run is doing, in words: a run that has not reported a step yet is loading its models and
    data, and one past its last step is saving, evaluating and registering its model."""
    if run.status == RunStatus.QUEUED:
        return "waiting for a worker"
    if run.status != RunStatus.RUNNING:
        return run.get_status_display().lower()
    if not run.progress_total:
        return "loading the model and the data"
    if run.progress_step >= run.progress_total:
        if run.kind in (RunKind.PPO, RunKind.DPO):
            return "saving, then the automatic evaluation"
        return "saving the model"
    return "training" if run.kind != RunKind.GENERATE else "sampling"


def run_status(run: TrainingRun) -> dict[str, Any]:
    """What the run page polls (status.json). Non-finite numbers become null: JavaScript's JSON.parse
    refuses NaN, and a page that cannot parse its status stops showing the run's progress."""
    return finite(
        {
            "id": run.pk,
            "kind": run.kind,
            "status": run.status,
            "phase": run_phase(run),
            "step": run.progress_step,
            "total": run.progress_total,
            "metrics": run.metrics,
            "history": run.metrics_history,
            "log_tail": run.log_tail,
            "error": run.error,
            "output_model": run.output_model_id,
            "cancel_requested": run.cancel_requested,
            "timing": run_timing(run),
            "started_at": run.started_at.isoformat() if run.started_at else None,
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "heartbeat_at": run.heartbeat_at.isoformat() if run.heartbeat_at else None,
        }
    )


def run_remaining(run: TrainingRun, now: datetime) -> float | None:
    """Seconds left for a run at its pace so far (steps done / time since it started); 0 when it is over."""
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        return 0.0
    if not (run.started_at and run.progress_step and run.progress_total):
        return None
    per_step = (now - run.started_at).total_seconds() / run.progress_step
    return per_step * max(run.progress_total - run.progress_step, 0)


def run_timing(run: TrainingRun, now: datetime | None = None) -> str:
    """'running for 2 min 10 s, about 5 min left' / 'took 42 s' / 'queued for 12 s', in words."""
    now = now or timezone.now()
    if run.status == RunStatus.QUEUED:
        return f"queued for {duration_words((now - run.created_at).total_seconds())}"
    if run.started_at is None:
        return ""
    if run.status != RunStatus.RUNNING:
        return f"took {duration_words(((run.finished_at or now) - run.started_at).total_seconds())}"
    words = f"running for {duration_words((now - run.started_at).total_seconds())}"
    left = run_remaining(run, now)
    return words + (f", about {duration_words(left)} left at its pace so far" if left else "")


@dataclass
class ConfigRow:
    field: str
    value: str
    help: str
    set_for_run: bool  # False: the stage's default


def config_rows(run: TrainingRun) -> list[ConfigRow]:
    """Every setting of the run's stage: those set for this run first (in the stage's field order), then
    the defaults. Paths the server fills in (model, dataset...) are shown only when the run's config has
    them: the page shows the models and snapshots themselves."""
    given = dict(run.config)
    fields = dataclasses.fields(config_class(run.kind))
    known = {f.name for f in fields}
    rows = [ConfigRow(k, _shown(given[k]), RUN_KEY_HELP.get(k, ""), True) for k in given if k not in known]
    set_rows, default_rows = [], []
    for f in fields:
        help_text = f.metadata.get("help", "")
        if f.name in given:
            set_rows.append(ConfigRow(f.name, _shown(given[f.name]), help_text, True))
        elif f.name not in _SERVER_FILLED:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            default_rows.append(ConfigRow(f.name, _shown(default), help_text, False))
    return set_rows + rows + default_rows


_SERVER_FILLED = frozenset(
    {"model", "dataset", "reward_model", "ptx_dataset", "demonstrations", "model_name", "output_dir"}
)


def _shown(value: Any) -> str:
    """A value as it would be typed: plain words as they are, anything with quotes, escapes or no
    characters at all (a template ending in a line break, an empty path) as a JSON string."""
    if isinstance(value, str) and value and value.isprintable() and value.strip() == value:
        return value
    return json.dumps(finite(value), ensure_ascii=False)
