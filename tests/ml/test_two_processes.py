"""Stages run in two processes (torch.distributed.run, gloo on the CPU): every rank takes the same decisions.

Each test launches tests/ml/two_ranks.py in two processes and reads what each rank recorded. The
launch's timeout is only a guard that turns a deadlock into a failure; no test measures time.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ml import factories
from training.ml.checkpoints import last_checkpoint, read_history, read_metrics

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("two_ranks.py")
DEADLOCK_GUARD = 600  # seconds; a healthy launch needs a small fraction of it


def launch(
    record: Path,
    kind: str,
    config: dict,
    *,
    stop_on_rank: int | None = None,
    every_rank_reports: bool = False,
) -> list[dict]:
    """Run a stage in two processes; return what rank 0 and rank 1 recorded (see two_ranks.py)."""
    spec = record.with_suffix(".json")
    spec.write_text(
        json.dumps(
            {
                "kind": kind,
                "config": config,
                "record": str(record),
                "stop_on_rank": stop_on_rank,
                "every_rank_reports": every_rank_reports,
            }
        )
    )
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "1",  # without it accelerate sees no GPU and runs each process alone
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(REPO),
    }
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    with subprocess.Popen(
        [*command, str(DRIVER), str(spec)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            _, err = proc.communicate(timeout=DEADLOCK_GUARD)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)  # the launcher stops its workers
            _, err = proc.communicate()
            pytest.fail(f"the two processes never finished (a rank waits in a collective):\n{err[-3000:]}")
    assert proc.returncode == 0, err[-3000:]
    ranks = [json.loads((record / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    for rank in ranks:
        assert (rank["world_size"], rank["backend"]) == (2, "gloo")
        assert rank["distributed_type"] == "DistributedType.MULTI_CPU"  # accelerate saw both processes
    return ranks


def ppo_config(model: Path, dataset: Path, out: Path, **overrides) -> dict:
    return {
        "model": str(model),
        "dataset": str(dataset),
        "output_dir": str(out),
        "learning_rate": 1e-3,
        "steps": 3,
        "batch_size": 4,
        "mini_batch_size": 4,
        "micro_batch_size": 2,  # two backwards per optimizer step: the first under DDP's no_sync
        "ppo_epochs": 1,
        "max_new_tokens": 6,
        "save_steps": 1000,  # only a stop or the last step checkpoints
        "progress_bar": False,
        **overrides,
    }


@pytest.fixture(scope="module")
def cancelled_ppo(tiny_model, data_dir, tmp_path_factory) -> tuple[Path, dict, list[dict]]:
    folder = tmp_path_factory.mktemp("ppo_two")
    config = ppo_config(tiny_model, data_dir / "prompts.jsonl", folder / "out")
    return folder / "out", config, launch(folder / "cancel", "ppo", config, stop_on_rank=1)


# Before ranks.any_rank, rank 1 left the loop alone after step 1 while rank 0 went on into step 2's
# gradient all-reduce: both waited forever and the guard failed the test.
def test_ppo_stopped_on_one_rank_cancels_every_rank_at_the_same_step(cancelled_ppo):
    out, _, ranks = cancelled_ppo
    assert [(rank["ended"], rank["step"]) for rank in ranks] == [("cancelled", 1), ("cancelled", 1)]
    checkpoint = last_checkpoint(out)
    assert checkpoint is not None and checkpoint.name == "checkpoint-1"
    assert json.loads((checkpoint / "ppo_state.json").read_text())["step"] == 1
    assert (checkpoint / "random_states_0.pkl").exists() and (checkpoint / "random_states_1.pkl").exists()


def test_ppo_cancelled_in_two_processes_resumes_from_its_checkpoint(cancelled_ppo, tmp_path):
    cancelled_out, config, _ = cancelled_ppo
    out = shutil.copytree(cancelled_out, tmp_path / "out")
    ranks = launch(tmp_path / "resume", "ppo", {**config, "output_dir": str(out)})
    assert [rank["ended"] for rank in ranks] == ["finished", "finished"]
    assert [event["step"] for event in ranks[0]["events"]] == [2, 3]  # step 1 was not run again
    assert "resumed from" in ranks[0]["events"][0]["log"]
    assert [row["step"] for row in read_history(out)] == [1, 2, 3] and read_metrics(out)["steps"] == 3
    assert last_checkpoint(out).name == "checkpoint-3"


# Before ranks.any_rank in ReporterCallback.on_step_end, rank 1 ended training after step 1 while
# rank 0 started step 2's backward: the two waited in different collectives until the guard fired.
def test_reward_model_stopped_on_one_rank_cancels_every_rank_with_a_checkpoint(
    tiny_model, data_dir, tmp_path
):
    config = {
        "model": str(tiny_model),
        "dataset": str(data_dir / "rankings.jsonl"),
        "output_dir": str(tmp_path / "out"),
        "learning_rate": 1e-3,
        "max_steps": 4,
        "per_device_train_batch_size": 2,
        "logging_steps": 1,
        "save_steps": 1000,
        "progress_bar": False,
    }
    ranks = launch(tmp_path / "record", "rm", config, stop_on_rank=1)
    assert [(rank["ended"], rank["step"]) for rank in ranks] == [("cancelled", 1), ("cancelled", 1)]
    checkpoint = last_checkpoint(tmp_path / "out")
    assert checkpoint is not None and checkpoint.name == "checkpoint-1"
    assert (checkpoint / "rng_state_0.pth").exists() and (checkpoint / "rng_state_1.pth").exists()


@pytest.fixture(scope="module")
def adaptive_ppo(tiny_model, tmp_path_factory) -> list[dict]:
    """Every rank reports its own per-step metrics; every episode has the same prompt, so what the two
    ranks sample differs only by their random streams."""
    folder = tmp_path_factory.mktemp("ppo_adaptive")
    rows = [{"id": i, "prompt": "What colour is the cat?", "split": "train"} for i in range(8)]
    dataset = factories.write_jsonl(folder / "one_prompt.jsonl", rows)
    config = ppo_config(
        tiny_model, dataset, folder / "out", steps=2, adaptive_kl=True, kl_target=0.5, kl_horizon=100
    )
    return launch(folder / "record", "ppo", config, every_rank_reports=True)


# Before ranks.mean_over_ranks each rank logged the figures of its own episodes (kl, entropy, losses
# differed from the first step on) and fed its own KL to the adaptive controller.
def test_every_rank_logs_the_same_ppo_metrics_and_beta(adaptive_ppo):
    rank0, rank1 = ([event["metrics"] for event in rank["events"]] for rank in adaptive_ppo)
    assert [event["step"] for event in adaptive_ppo[0]["events"]] == [1, 2]
    assert rank0 == rank1
    assert rank0[0]["beta"] != 0.02 and rank0[1]["beta"] != rank0[0]["beta"]  # the controller moved it
    assert adaptive_ppo[0]["metrics"] == adaptive_ppo[1]["metrics"]


# Before the per-rank seed (seed + rank) both ranks drew the same random stream: with the same prompts
# and the same weights they sampled the very same responses.
def test_each_rank_samples_its_own_responses(adaptive_ppo):
    first0, first1 = (rank["rollouts"][0] for rank in adaptive_ppo)
    assert first0["prompts"] == first1["prompts"]
    assert first0["responses"] != first1["responses"]
