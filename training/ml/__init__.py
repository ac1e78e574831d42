"""Pure machine-learning side of the loop: SFT, listwise reward model, PPO, DPO and sampling.

No Django here: a stage gets a dataset file and a config, writes a model folder, returns metrics.
torch, transformers and TRL load only when a stage runs, so importing this package is cheap.

    from training.ml import run_stage, TrainingCancelled
    metrics = run_stage("rm", {"model": sft_dir, "dataset": "rankings.jsonl", "output_dir": rm_dir},
                        progress=lambda event: ..., should_stop=lambda: False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from training.ml.config import load_config
from training.ml.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    TrainingCancelled,
    TrainingError,
)

STAGES = ("sft", "rm", "ppo", "dpo", "generate", "tiny")

__all__ = [
    "STAGES",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "TrainingCancelled",
    "TrainingError",
    "load_config",
    "run_stage",
]


def run_stage(
    kind: str,
    config: dict[str, Any] | Any,
    progress: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    reward_fn: Callable[[list[str], list[str]], list[float]] | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    """Run one stage and return its metrics (also written to <output_dir>/metrics.json).

    kind: 'sft', 'rm', 'ppo', 'dpo', 'generate' or 'tiny'.
    config: the stage's config fields as a dict (strings are coerced; unknown keys raise ConfigError),
        or a config dataclass from training.ml.config.
    progress: called at most once per step with {"step", "total", "metrics": {...}, "log": str}.
    should_stop: polled every step; once it returns True the stage checkpoints and raises
        TrainingCancelled; running again with the same output_dir resumes.
    reward_fn: ppo only: reward(prompts, responses) -> scores, instead of a reward model folder.
    echo: print the config and log lines to stderr.
    Raises ConfigError, DatasetError, CheckpointError (bad input) or TrainingCancelled.
    """
    from training.ml.stages import run_stage as _run_stage

    return _run_stage(kind, config, progress, should_stop, reward_fn=reward_fn, echo=echo)
