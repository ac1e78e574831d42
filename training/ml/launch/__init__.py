"""The shipped accelerate launch configs, by name: a run or a round names one, never a file path.

Each `<name>.yaml` here is an accelerate config file (`accelerate launch --config_file`), loaded by
accelerate itself, which refuses unknown keys: so what a config is for lives in this registry, one line
each. The configs for "every GPU of this machine" say 8 processes; the launcher passes the number of
GPUs it sees instead. Which one fits which model size: docs/scale-out.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.ml.errors import ConfigError

FOLDER = Path(__file__).parent


@dataclass(frozen=True)
class LaunchConfig:
    name: str
    summary: str
    cpu: bool = False  # runs on CPUs (gloo): the launcher sets ACCELERATE_USE_CPU=1
    every_gpu: bool = False  # one process per visible GPU
    shards_weights: bool = False  # no rank holds the whole model (FSDP, ZeRO-3)

    @property
    def path(self) -> Path:
        return FOLDER / f"{self.name}.yaml"


LAUNCH_CONFIGS: dict[str, LaunchConfig] = {
    c.name: c
    for c in (
        LaunchConfig("single-gpu", "one process on one GPU, no sharding (models up to about 1B)"),
        LaunchConfig("ddp", "DDP on every GPU of the machine: a full replica on each", every_gpu=True),
        LaunchConfig("fsdp2", "FSDP2: weights, gradients and optimizer states sharded", every_gpu=True, shards_weights=True),
        LaunchConfig("zero2", "DeepSpeed ZeRO-2: gradients and optimizer states sharded", every_gpu=True),
        LaunchConfig("zero2-offload", "DeepSpeed ZeRO-2, optimizer states in CPU memory", every_gpu=True),
        LaunchConfig("zero3", "DeepSpeed ZeRO-3: weights, gradients and optimizer states sharded", every_gpu=True, shards_weights=True),
        LaunchConfig("zero3-offload", "DeepSpeed ZeRO-3, weights and optimizer states in CPU memory", every_gpu=True, shards_weights=True),
        LaunchConfig("cpu-ddp-2", "two CPU processes (DDP over gloo), for tests and the demo", cpu=True),
    )
}  # fmt: skip


def launch_config(name: str) -> LaunchConfig:
    """The shipped config called `name`; ConfigError naming the choices otherwise."""
    try:
        return LAUNCH_CONFIGS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown launch config {name!r}; choose one of: {', '.join(LAUNCH_CONFIGS)}"
        ) from None


def describe_launch_configs() -> str:
    width = max(map(len, LAUNCH_CONFIGS))
    return "\n".join(f"{c.name:<{width}}  {c.summary}" for c in LAUNCH_CONFIGS.values())
