"""The automatic evaluation of a new policy, the Django side: read the run's inputs from its rows, call
training.ml.evaluation (pure: files and plain arguments), hand back the figures the registry keeps in the
model version's metrics["auto_eval"]."""

import logging
from collections.abc import Callable

from labeling.services.exports import snapshot_path
from training.ml.errors import DatasetError
from training.ml.evaluation import auto_evaluate

from ..models import TrainingRun
from . import stages

log = logging.getLogger(__name__)


def run_auto_evaluate(run: TrainingRun, progress: Callable[[dict], None]) -> dict:
    """RM win rate of a new policy over its parent, RM held-out accuracy, KL to the SFT model. On the
    valid split, or the train split when there is no valid one (small datasets; the result says which).
    A failure is reported, never fails the run."""
    data = stages.data_snapshot(run.kind, list(run.snapshots.all()))
    assert data is not None  # stages.validate_inputs refused a run without its dataset snapshot
    common = {
        "policy_dir": run.config["output_dir"],
        "parent_dir": run.base_model.checkpoint,
        "reward_model_dir": run.reward_model.checkpoint if run.reward_model else None,
        "sft_dir": run.base_model.checkpoint,
        "prompts_file": str(snapshot_path(data)),
        "max_prompts": int(run.config.get("auto_eval_prompts", 32)),
        "max_new_tokens": 32,
    }
    for split in ("valid", "train"):
        try:
            result = auto_evaluate(split=split, **common)
        except DatasetError:
            continue
        except Exception as exc:
            log.exception("automatic evaluation of run %s", run.pk)
            return {"error": f"{type(exc).__name__}: {exc}"}
        progress({"log": f"automatic evaluation on the {split} split: {result}"})
        return {**result, "split": split}
    return {"error": "no prompts to evaluate on"}
