"""What the periodic schedules (django-celery-beat, editable in the admin) do. Each one declines to
start a second copy of work that is still going."""

from django.db.models import Max

from labeling.models import Comparison

from ..models import ModelKind, ModelVersion, Round, RoundStatus, RunKind, RunStatus, TrainingRun
from .registry import base_model_get_or_create
from .rounds import round_start
from .runs import run_start

ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


def scheduled_round(*, method: str = "ppo", config: dict | None = None) -> Round | None:
    """The nightly round; nothing when a round is still running."""
    if Round.objects.filter(status=RoundStatus.RUNNING).exists():
        return None
    return round_start(method=method, config=config)


def comparisons_since_last_rm() -> int:
    last = ModelVersion.objects.filter(kind=ModelKind.RM).aggregate(t=Max("created_at"))["t"]
    qs = Comparison.objects.all()
    return qs.filter(created_at__gt=last).count() if last else qs.count()


def retrain_rm_if_due(*, threshold: int) -> TrainingRun | None:
    """Train a new reward model once `threshold` comparisons arrived since the last one, starting
    from the newest SFT model. Nothing when an RM run is queued or running."""
    if TrainingRun.objects.filter(kind=RunKind.RM, status__in=ACTIVE).exists():
        return None
    if comparisons_since_last_rm() < threshold:
        return None
    from labeling.services.exports import snapshot_create

    policy = ModelVersion.objects.filter(kind=ModelKind.SFT).order_by("-created_at").first()
    rankings = snapshot_create(kind="rm_rankings", filters={})
    sft = snapshot_create(kind="sft", filters={})
    return run_start(
        kind=RunKind.RM, base_model=policy or base_model_get_or_create(), snapshots=[rankings, sft]
    )
