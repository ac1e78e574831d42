"""What each kind of run needs, and the training.ml config built from a run's rows.

This is the one place that knows training.ml's config keys: training.ml sees files and plain
values, never ORM objects.
"""

from collections.abc import Sequence
from pathlib import Path

from core.errors import ServiceError
from labeling.models import DatasetSnapshot
from labeling.services.exports import snapshot_path

from ..models import ModelKind, ModelVersion, RunKind, TrainingRun

# The snapshot kinds each run kind accepts as its training data (first match wins).
DATA_KINDS: dict[str, tuple[str, ...]] = {
    RunKind.SFT: ("sft",),
    RunKind.RM: ("rm_rankings", "rm_pairs"),
    RunKind.PPO: ("prompts",),
    RunKind.DPO: ("rm_pairs",),
    RunKind.GENERATE: ("prompts",),
}


def data_snapshot(kind: str, snapshots: Sequence[DatasetSnapshot]) -> DatasetSnapshot | None:
    for wanted in DATA_KINDS[kind]:
        for snap in snapshots:
            if snap.kind == wanted:
                return snap
    return None


def validate_inputs(
    *,
    kind: str,
    base_model: ModelVersion,
    snapshots: Sequence[DatasetSnapshot],
    reward_model: ModelVersion | None,
) -> None:
    if kind not in RunKind.values:
        raise ServiceError(
            f"unknown run kind '{kind}'; choose one of: {', '.join(RunKind.values)}.", field="kind"
        )
    if base_model is None:
        raise ServiceError("a base model version is required.", field="base_model")
    if data_snapshot(kind, snapshots) is None:
        wanted = " or ".join(DATA_KINDS[kind])
        raise ServiceError(f"a {kind} run needs a {wanted} dataset snapshot.", field="snapshots")
    for snapshot in snapshots:
        snapshot_path(snapshot)  # refuses, before the run is queued, a stored path outside MEDIA_ROOT
    if kind == RunKind.PPO:
        if reward_model is None or reward_model.kind != ModelKind.RM:
            raise ServiceError("a PPO run needs a reward model version (kind rm).", field="reward_model")
    if kind == RunKind.SFT and reward_model is not None and reward_model.kind != ModelKind.RM:
        raise ServiceError(
            "an SFT run's reward model (it picks the final epoch) must be a reward model version (kind rm).",
            field="reward_model",
        )
    if kind == RunKind.RM and base_model.kind == ModelKind.RM:
        raise ServiceError(
            "a reward model starts from a policy (SFT or base), not from another reward model.",
            field="base_model",
        )


def _first_rows(source: Path, target: Path, n: int) -> Path:
    """The first n lines of a snapshot, as the input of one generation run (snapshots stay whole)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open(encoding="utf-8") as src, target.open("w", encoding="utf-8") as dst:
        for _, line in zip(range(n), src, strict=False):
            dst.write(line)
    return target


def build_config(run: TrainingRun) -> tuple[str, dict]:
    """(stage name, training.ml config dict) for a run."""
    snapshots = list(run.snapshots.all())
    data = data_snapshot(run.kind, snapshots)
    overrides = {
        k: v for k, v in run.config.items() if k not in ("output_dir", "max_prompts", "auto_eval_prompts")
    }
    config: dict = {"model": run.base_model.checkpoint, "output_dir": run.config["output_dir"]}
    if data is not None:
        config["dataset"] = str(snapshot_path(data))
    sft = next((s for s in snapshots if s.kind == "sft"), None)
    if run.kind == RunKind.RM and sft is not None:
        config["demonstrations"] = str(snapshot_path(sft))  # the bias makes their mean reward 0
    if run.kind == RunKind.SFT and run.reward_model is not None:
        config["selection_reward_model"] = run.reward_model.checkpoint  # the epoch its reward prefers
    if run.kind == RunKind.PPO:
        assert run.reward_model is not None  # validate_inputs refuses a PPO run without one
        config["reward_model"] = run.reward_model.checkpoint
        if sft is not None:
            config.setdefault("ptx_dataset", str(snapshot_path(sft)))
    if run.kind == RunKind.GENERATE:
        config["model_name"] = run.base_model.name
        if run.config.get("max_prompts") and data is not None:
            config["dataset"] = str(
                _first_rows(
                    snapshot_path(data),
                    Path(run.config["output_dir"]) / "prompts.jsonl",
                    int(run.config["max_prompts"]),
                )
            )
    config.update(overrides)
    return run.kind, config
