"""Stage output folders: model + tokenizer + training_config.{yaml,json} + metrics.json + log_history.jsonl.

Resumable checkpoints live inside the output folder as checkpoint-<step>/ (the Trainer's layout, which
the PPO loop follows too).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from training.ml.config import config_dict
from training.ml.errors import CheckpointError

CONFIG_YAML = "training_config.yaml"
CONFIG_JSON = "training_config.json"
METRICS = "metrics.json"
HISTORY = "log_history.jsonl"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def save_config(out: str | Path, kind: str, cfg: Any, extra: dict[str, Any] | None = None) -> None:
    """Write the stage config (and results such as the reward bias) beside a checkpoint."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"stage": kind, **config_dict(cfg), **(extra or {})}
    (out / CONFIG_YAML).write_text(yaml.safe_dump(data, sort_keys=False))
    (out / CONFIG_JSON).write_text(json.dumps(data, indent=2))


def save_metrics(
    out: str | Path, metrics: dict[str, Any], history: list[dict[str, Any]] | None = None
) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS).write_text(json.dumps(_json_safe(metrics), indent=2, sort_keys=True))
    if history is not None:
        lines = [json.dumps(_json_safe(row)) for row in history]
        (out / HISTORY).write_text("\n".join(lines) + ("\n" if lines else ""))


def read_metrics(out: str | Path) -> dict[str, Any]:
    return json.loads((Path(out) / METRICS).read_text())


def read_history(out: str | Path) -> list[dict[str, Any]]:
    path = Path(out) / HISTORY
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG_JSON
    return json.loads(path.read_text()) if path.exists() else {}


def checkpoint_dirs(out: str | Path) -> list[Path]:
    """checkpoint-<step> folders of an output folder, oldest first."""
    out = Path(out)
    if not out.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name))]
    return [p for _, p in sorted(found)]


# Written last when a checkpoint is saved: transformers' Trainer saves trainer_state.json after the
# weights, optimizer and RNG states; our PPO writes ppo_state.json after accelerate's save_state.
COMPLETE_MARKERS = ("trainer_state.json", "ppo_state.json")


def last_checkpoint(out: str | Path) -> Path | None:
    """The newest complete checkpoint. A worker killed while saving leaves a newer folder without
    its marker; resuming from that would fail, so it is skipped."""
    complete = [d for d in checkpoint_dirs(out) if any((d / marker).exists() for marker in COMPLETE_MARKERS)]
    return complete[-1] if complete else None


def checkpoint_step(path: Path) -> int:
    match = _CHECKPOINT.match(path.name)
    if not match:
        raise CheckpointError(f"{path} is not a checkpoint-<step> folder")
    return int(match.group(1))


def prune_checkpoints(out: str | Path, keep: int) -> None:
    import shutil

    dirs = checkpoint_dirs(out)
    for path in dirs[: max(0, len(dirs) - max(keep, 1))]:
        shutil.rmtree(path, ignore_errors=True)


def save_model_folder(out: str | Path, model: Any, tokenizer: Any) -> None:
    """The Hugging Face part of a stage output: weights, config.json, tokenizer files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
