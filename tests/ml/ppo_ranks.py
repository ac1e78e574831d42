"""PPO in each process of a torch.distributed.run launch, for test_ppo_distributed.py.

    ACCELERATE_USE_CPU=1 python -m torch.distributed.run --standalone --nproc_per_node N \
        tests/ml/ppo_ranks.py SPEC.json

SPEC.json holds "config" (PPO config fields) and "record" (a folder). Every rank gets a Reporter of its
own, so each rank's per-step metrics can be read; the reward is count_red (tests/ml/test_ppo.py).
Each rank writes <record>/rank<R>.json: the world size, the engine accelerate chose, and its events.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from tests.ml.test_ppo import count_red
from training.ml import load_config
from training.ml.ppo import run_ppo
from training.ml.ppo_engine import engine_name
from training.ml.progress import Reporter


def main(spec_path: str) -> None:
    torch.set_num_threads(1)
    spec = json.loads(Path(spec_path).read_text())
    events: list[dict[str, Any]] = []
    rank = int(os.environ["RANK"])
    reporter = Reporter(events.append, is_main=True, echo=False)
    metrics = run_ppo(load_config("ppo", overrides=spec["config"]), reporter, count_red)
    from accelerate import Accelerator

    record = {
        "rank": rank,
        "world_size": dist.get_world_size(),
        "engine": engine_name(Accelerator()),
        "metrics": metrics,
        "events": events,
    }
    folder = Path(spec["record"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank{rank}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
