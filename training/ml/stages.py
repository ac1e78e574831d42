"""run_stage: the one entry point of the Python API; the CLI and Celery tasks both call it."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from typing import Any

from training.ml.checkpoints import save_config
from training.ml.config import config_class, format_config, load_config
from training.ml.errors import ConfigError
from training.ml.progress import ProgressFn, Reporter, StopFn

RewardFn = Callable[[list[str], list[str]], list[float]]


def _is_main_process() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def run_stage(
    kind: str,
    config: Any,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    *,
    reward_fn: RewardFn | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    """Run one stage ('sft', 'rm', 'ppo', 'dpo', 'generate', 'tiny') and return its metrics.

    config: a dict of config fields (strings are coerced) or a config dataclass.
    progress: called at most once per step with {"step", "total", "metrics", "log"}.
    should_stop: polled every step; when it returns True the stage checkpoints and raises TrainingCancelled.
    reward_fn: ppo only, a Python reward(prompts, responses) -> scores used instead of a reward model folder.
    """
    cls = config_class(kind)
    cfg: Any  # the stage's config dataclass
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        if not isinstance(config, cls):
            raise ConfigError(f"stage {kind!r} needs a {cls.__name__}, got {type(config).__name__}")
        cfg = config
    else:
        cfg = load_config(kind, overrides=dict(config))
    if reward_fn is not None and kind != "ppo":
        raise ConfigError("reward_fn is only used by the ppo stage")
    reporter = Reporter(progress, should_stop, is_main=_is_main_process(), echo=echo)
    if kind != "tiny":
        from training.ml.runtime import fit_lengths, use_hub_kernels

        use_hub_kernels(cfg.hub_kernels)
        for note in fit_lengths(cfg):
            reporter.log(f"note: {note}")
    reporter.log(format_config(kind, cfg))
    if reporter.is_main:
        save_config(cfg.output_dir, kind, cfg)  # beside the checkpoints from the start
    try:
        return _dispatch(kind, cfg, reporter, reward_fn)
    finally:
        _release_memory()


def _release_memory() -> None:
    """Free the stage's models before the next stage runs in the same worker process."""
    import gc

    gc.collect()
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _dispatch(kind: str, cfg: Any, reporter: Reporter, reward_fn: RewardFn | None) -> dict[str, Any]:
    if kind == "tiny":
        from training.ml.tiny import run_tiny

        return run_tiny(cfg)
    if kind == "sft":
        from training.ml.sft import run_sft

        return run_sft(cfg, reporter)
    if kind == "rm":
        from training.ml.reward import run_reward

        return run_reward(cfg, reporter)
    if kind == "ppo":
        from training.ml.ppo import run_ppo

        return run_ppo(cfg, reporter, reward_fn=reward_fn)
    if kind == "dpo":
        from training.ml.dpo import run_dpo

        return run_dpo(cfg, reporter)
    from training.ml.generate import run_generate

    return run_generate(cfg, reporter)
