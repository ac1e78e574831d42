"""One training stage in each process of a two-process launch, for test_two_processes.py.

    ACCELERATE_USE_CPU=1 python -m torch.distributed.run --standalone --nproc_per_node 2 \
        tests/ml/two_ranks.py SPEC.json

SPEC.json holds "kind" and "config" (the stage and its config fields), "record" (a folder), and:
- "stop_on_rank": the rank whose should_stop() answers True from its first poll, after its first step
  (null: no stop). The other rank's should_stop() stays False.
- "kill_rank": the rank that kills itself (SIGKILL, as the kernel's OOM killer would) at its first
  poll, after its first step (null: none).
- "every_rank_reports": ppo only; every rank gets a Reporter of its own (run_stage reports on rank 0
  only), so each rank's per-step metrics can be compared.
ppo is rewarded by count_red, which also records what it was given on this rank.

Each rank writes <record>/rank<R>.json: its view of the process group, the engine its Accelerator ran
under, how the stage ended (finished, or cancelled at a step), the progress events it received and the
rollouts it scored. The tests start it through launch() below.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
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
        if rank == spec.get("kill_rank"):
            os.kill(os.getpid(), signal.SIGKILL)
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
    from accelerate.state import AcceleratorState

    record = {
        "rank": rank,
        "world_size": dist.get_world_size(),
        "backend": dist.get_backend(),
        "distributed_type": str(PartialState().distributed_type),
        # what the stage's Accelerator ran under (DDP on the CPU is MULTI_CPU, FSDP is FSDP)
        "engine": str(AcceleratorState().distributed_type) if AcceleratorState._shared_state else None,
        **outcome,
        "events": events,
        "rollouts": rollouts,
    }
    folder = Path(spec["record"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank{rank}.json").write_text(json.dumps(record))
    dist.destroy_process_group()


REPO = Path(__file__).resolve().parents[2]
DEADLOCK_GUARD = 600  # seconds; a healthy launch needs a small fraction of it


def run_launch(
    record: Path, kind: str, config: dict, *, env: dict[str, str] | None = None, **spec: Any
) -> subprocess.CompletedProcess:
    """Run a stage in two processes (torch.distributed.run, gloo on the CPU) with this driver; spec holds
    stop_on_rank, kill_rank or every_rank_reports. The timeout only turns a deadlock into a failure."""
    import pytest

    spec_path = record.with_suffix(".json")
    spec_path.write_text(json.dumps({"kind": kind, "config": config, "record": str(record), **spec}))
    environment = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",  # without it accelerate sees no GPU and runs each process alone
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    with subprocess.Popen(
        [*command, __file__, str(spec_path)],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=DEADLOCK_GUARD)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # the launcher stops its workers
            _, err = proc.communicate()
            pytest.fail(f"the two processes never finished (a rank waits in a collective):\n{err[-3000:]}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def launch(record: Path, kind: str, config: dict, **options: Any) -> list[dict]:
    """run_launch, which must succeed; returns what rank 0 and rank 1 recorded."""
    done = run_launch(record, kind, config, **options)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((record / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    for rank in ranks:
        assert (rank["world_size"], rank["backend"]) == (2, "gloo")
        assert rank["distributed_type"] == "DistributedType.MULTI_CPU"  # accelerate saw both processes
    return ranks


if __name__ == "__main__":
    main(sys.argv[1])
