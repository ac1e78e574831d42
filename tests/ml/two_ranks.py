"""One training stage in each process of a two-process launch, for test_two_processes.py.

    ACCELERATE_USE_CPU=1 python -m torch.distributed.run --standalone --nproc_per_node 2 \
        tests/ml/two_ranks.py SPEC.json

SPEC.json holds "kind" and "config" (the stage and its config fields), "record" (a folder), and:
- "stop_on_rank": the rank whose should_stop() answers True from its first poll, after its first step
  (null: no stop). The other rank's should_stop() stays False.
- "every_rank_reports": ppo only; every rank gets a Reporter of its own (run_stage reports on rank 0
  only), so each rank's per-step metrics can be compared.
ppo is rewarded by count_red, which also records what it was given on this rank.

Each rank writes <record>/rank<R>.json: its view of the process group, how the stage ended (finished,
or cancelled at a step), the progress events it received and the rollouts it scored.
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
from training.ml import TrainingCancelled, load_config, run_stage
from training.ml.ppo import run_ppo
from training.ml.progress import Reporter


def main(spec_path: str) -> None:
    torch.set_num_threads(1)
    spec = json.loads(Path(spec_path).read_text())
    kind, config = spec["kind"], spec["config"]
    events: list[dict[str, Any]] = []
    rollouts: list[dict[str, Any]] = []
    rank = int(os.environ["RANK"])

    def should_stop() -> bool:
        return rank == spec.get("stop_on_rank")

    def reward(prompts: list[str], responses: list[str]) -> list[float]:
        rollouts.append({"prompts": list(prompts), "responses": list(responses)})
        return count_red(prompts, responses)

    outcome: dict[str, Any] = {"ended": "finished"}
    try:
        if spec.get("every_rank_reports"):
            reporter = Reporter(events.append, should_stop, is_main=True, echo=False)
            outcome["metrics"] = run_ppo(load_config(kind, overrides=config), reporter, reward)
        else:
            rewarded = {"reward_fn": reward} if kind == "ppo" else {}
            outcome["metrics"] = run_stage(
                kind, config, progress=events.append, should_stop=should_stop, echo=False, **rewarded
            )
    except TrainingCancelled as cancelled:
        outcome = {"ended": "cancelled", "step": cancelled.step}
    from accelerate import PartialState

    record = {
        "rank": rank,
        "world_size": dist.get_world_size(),
        "backend": dist.get_backend(),
        "distributed_type": str(PartialState().distributed_type),
        **outcome,
        "events": events,
        "rollouts": rollouts,
    }
    folder = Path(spec["record"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank{rank}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
