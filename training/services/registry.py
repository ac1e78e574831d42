"""The model registry: the base model, and registering what a run produced with its lineage."""

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.services import Action, audit_record
from core.errors import ServiceError
from labeling.demo import demo_texts
from labeling.models import Batch, DatasetSnapshot

from ..models import ModelKind, ModelVersion, RunKind, RunStatus, TrainingRun
from .stages import DATA_KINDS, data_snapshot


def base_model_path() -> str:
    """BASE_MODEL, or the demo's tiny model (a word-level tokenizer, briefly pre-trained on the demo texts so
    its samples read as words), built once under MEDIA_ROOT."""
    if settings.BASE_MODEL:
        return settings.BASE_MODEL
    folder = Path(settings.MEDIA_ROOT) / "models" / "base-demo"
    if not (folder / "config.json").exists():
        try:
            from training.ml.tiny import build_demo_model

            build_demo_model(folder, demo_texts())
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
    """The model and the models it was built from, newest first, back to the base model: its parent (the
    start of its run) and, for a PPO model, the reward model it was optimised against."""
    found: dict[int, ModelVersion] = {}
    todo: list[ModelVersion] = [model]
    while todo:
        node = todo.pop()
        if node.pk in found:
            continue
        found[node.pk] = node
        todo += [m for m in (node.parent, _reward_model(node)) if m is not None]
    return sorted(found.values(), key=lambda m: (m.created_at, m.pk), reverse=True)


def _reward_model(model: ModelVersion) -> ModelVersion | None:
    run = TrainingRun.objects.filter(output_model=model).select_related("reward_model").first()
    return run.reward_model if run is not None else None


# What each kind of run reads beside its training data (training/services/stages.build_config): the
# demonstrations snapshot, for the reward model's zero point or PPO's pretraining mix.
ALSO_READS = {
    RunKind.RM: ("sft", "demonstrations: the reward's zero point (their mean reward is set to 0)"),
    RunKind.PPO: ("sft", "demonstrations: the pretraining mix (ptx)"),
}


@dataclass(frozen=True)
class SnapshotHeld:
    """A snapshot a model trained on, what its run read it for, and the labels it holds by batch."""

    snapshot: DatasetSnapshot
    role: str
    batches: list[tuple[Batch, int]]  # (batch, lines of the snapshot from its labels), by batch id
    outside_batches: int  # lines from no batch (imported demonstrations, prompts)
    recorded: bool  # False: exported before snapshots recorded what they hold


def _role(kind: str, snapshot: DatasetSnapshot, data: DatasetSnapshot | None) -> str:
    if data is not None and snapshot.pk == data.pk:
        return "training data"
    also = ALSO_READS.get(RunKind(kind)) if kind in RunKind.values else None
    if also is not None and snapshot.kind == also[0]:
        return also[1]
    return "attached to the run, not read"


def snapshots_held(model: ModelVersion) -> list[SnapshotHeld]:
    """The snapshots this model's run trained on (not its parents'), each with the batches it holds."""
    snapshots = sorted(model.snapshots.all(), key=lambda s: s.pk)
    data = data_snapshot(model.kind, snapshots) if model.kind in DATA_KINDS else None
    ids = {int(b) for s in snapshots for b in (s.contents or {}).get("batches", {})}
    batches = Batch.objects.in_bulk(ids)
    held = []
    for snap in snapshots:
        counts = (snap.contents or {}).get("batches", {})
        held.append(
            SnapshotHeld(
                snapshot=snap,
                role=_role(model.kind, snap, data),
                batches=[(batches[int(b)], n) for b, n in sorted(counts.items(), key=lambda i: int(i[0]))],
                outside_batches=(snap.contents or {}).get("outside_batches", 0),
                recorded=bool(snap.contents),
            )
        )
    return held


def batches_behind(model: ModelVersion) -> list[Batch]:
    """Exactly the labeling batches whose labels are in the snapshots this model's run read (its parents'
    are theirs: see lineage), by id. Batches that gave no line, and snapshots not read, count for nothing."""
    found = {
        batch.pk: batch
        for held in snapshots_held(model)
        if held.role != "attached to the run, not read"
        for batch, _ in held.batches
    }
    return [found[pk] for pk in sorted(found)]
