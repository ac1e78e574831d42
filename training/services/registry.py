"""The model registry: the base model, and registering what a run produced with its lineage."""

from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import Action, audit_record
from core.errors import ServiceError
from labeling.models import Batch, DatasetSnapshot

from ..models import ModelKind, ModelVersion, RunKind, RunStatus, TrainingRun


def base_model_path() -> str:
    """BASE_MODEL, or the tiny model training.ml builds (once) under MEDIA_ROOT."""
    if settings.BASE_MODEL:
        return settings.BASE_MODEL
    folder = Path(settings.MEDIA_ROOT) / "models" / "base-tiny"
    if not (folder / "config.json").exists():
        from training.ml.tiny import build_tiny_model

        try:
            build_tiny_model(folder)
        except ModuleNotFoundError as exc:  # the slim web image: no torch, no transformers
            raise ServiceError(
                "BASE_MODEL is not set, and this process cannot build the tiny demo model: the training "
                "packages (pip install '.[train]') are not installed here. Set BASE_MODEL to a model folder "
                "or hub id the GPU workers can read.",
                field="base_model",
                code="base_model_missing",
            ) from exc
    return str(folder)


def base_model_get_or_create() -> ModelVersion:
    """The base ModelVersion, registered the first time it is used."""
    path = base_model_path()
    existing = ModelVersion.objects.filter(kind=ModelKind.BASE, checkpoint=path).first()
    if existing:
        return existing
    with transaction.atomic():
        name = (
            "base"
            if not ModelVersion.objects.filter(name="base").exists()
            else f"base-{ModelVersion.objects.count()}"
        )
        return ModelVersion.objects.create(
            name=name,
            kind=ModelKind.BASE,
            checkpoint=path,
            config={"source": settings.BASE_MODEL or "training.ml.tiny"},
        )


@transaction.atomic
def run_register(run: TrainingRun, metrics: dict) -> None:
    """Register what a run made: a ModelVersion with its lineage (all or nothing), then mark the run done.
    Written once: a retry after a commit whose answer the outage swallowed finds it done."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status == RunStatus.SUCCEEDED:
        return
    clean = {
        k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool | list | dict | type(None))
    }
    if run.kind != RunKind.GENERATE:
        model = ModelVersion.objects.create(
            name=f"{run.kind}-run{run.pk}" + (f"-round{run.round.number}" if run.round else ""),
            kind=ModelKind(run.kind),
            parent=run.base_model,
            checkpoint=run.config["output_dir"],
            metrics=clean,
            config={**run.config, "reward_model": run.reward_model_id},
        )
        model.snapshots.set(run.snapshots.all())
        run.output_model = model
    run.status, run.metrics, run.finished_at = RunStatus.SUCCEEDED, clean, timezone.now()
    run.progress_step = max(run.progress_step, run.progress_total)
    run.save(update_fields=["status", "metrics", "finished_at", "output_model", "progress_step"])
    audit_record(
        actor=None, action=Action.RUN_SUCCEEDED, target=run, details={"model_version": run.output_model_id}
    )


def lineage(model: ModelVersion) -> list[ModelVersion]:
    """The model and its ancestors, newest first, back to the base model."""
    chain, seen = [], set()
    node: ModelVersion | None = model
    while node is not None and node.pk not in seen:
        chain.append(node)
        seen.add(node.pk)
        node = node.parent
    return chain


def batches_behind(model: ModelVersion) -> list[Batch]:
    """The labeling batches whose labels built this model or any of its ancestors."""
    snapshots = DatasetSnapshot.objects.filter(model_versions__in=lineage(model)).distinct()
    batch_ids: set[int] = set()
    for snap in snapshots:
        batch_ids.update(int(b) for b in (snap.filters or {}).get("batches") or [])
    if batch_ids:
        return list(Batch.objects.filter(pk__in=batch_ids).order_by("pk"))
    if snapshots:  # snapshots without a batch filter were built from every batch that existed then
        newest = max(s.created_at for s in snapshots)
        return list(
            Batch.objects.filter(created_at__lte=newest).exclude(kind=Batch.Kind.EVALUATION).order_by("pk")
        )
    return []
