"""PPO's resumable checkpoints: accelerate's save_state (the prepared module and optimizer, whatever
the engine shards, and every rank's random state), each rank's EMA shard, then the loop's own state
(step, beta, history) written last, as the marker of a complete checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from training.ml.checkpoints import checkpoint_step, prune_checkpoints, save_config
from training.ml.config import PPOConfig
from training.ml.ppo_models import WeightEMA

STATE = "ppo_state.json"


def save_ppo_checkpoint(
    accelerator: Any, cfg: PPOConfig, step: int, ema: WeightEMA | None, state: dict[str, Any]
) -> None:
    path = Path(cfg.output_dir) / f"checkpoint-{step}"
    accelerator.save_state(str(path))
    if ema is not None:  # each rank its own shard of the EMA
        torch.save(ema.state_dict(), path / f"ema_{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()  # every rank's random state and EMA shard is written before the marker
    if accelerator.is_main_process:
        save_config(path, "ppo", cfg)
        (path / STATE).write_text(json.dumps({"step": step, **state}))  # last: it marks it complete
        prune_checkpoints(cfg.output_dir, cfg.save_total_limit)
    accelerator.wait_for_everyone()


def load_ppo_checkpoint(accelerator: Any, path: Path, ema: WeightEMA | None) -> dict[str, Any]:
    """Restore the module, optimizer, random states and EMA shard; -> the loop's state, with its step."""
    accelerator.load_state(str(path))
    shard = path / f"ema_{accelerator.process_index}.pt"
    if ema is not None and shard.exists():
        ema.load_state_dict(torch.load(shard, map_location="cpu", weights_only=True))
    return {**json.loads((path / STATE).read_text()), "step": checkpoint_step(path)}
