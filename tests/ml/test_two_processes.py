"""Stages run in two processes (torch.distributed.run, gloo on the CPU): every rank takes the same decisions.

Each test launches tests/ml/two_ranks.py in two processes and reads what each rank recorded. The
launch's timeout is only a guard that turns a deadlock into a failure; no test measures time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.ml import factories
from tests.ml.two_ranks import launch, run_launch
from training.ml.checkpoints import last_checkpoint, read_history, read_metrics

pytestmark = pytest.mark.slow


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


def trainer_stage_config(kind: str, model: Path, data_dir: Path, out: Path) -> dict:
    """A short run of a Trainer-based stage: 4 steps of 2 examples per rank, no scheduled checkpoint."""
    dataset = {"sft": "sft.jsonl", "rm": "rankings.jsonl", "dpo": "pairs.jsonl"}[kind]
    return {
        "model": str(model),
        "dataset": str(data_dir / dataset),
        "output_dir": str(out),
        "learning_rate": 1e-3,
        "max_steps": 4,
        "per_device_train_batch_size": 2,
        "logging_steps": 1,
        "save_steps": 1000,
        "progress_bar": False,
    }


# Before ranks.any_rank in ReporterCallback.on_step_end, rank 1 ended training after step 1 while
# rank 0 started step 2's backward: the two waited in different collectives until the guard fired.
@pytest.mark.parametrize("kind", ["sft", "rm", "dpo"])
def test_a_trainer_stage_stopped_on_one_rank_cancels_every_rank_with_a_checkpoint(
    kind, tiny_model, data_dir, tmp_path
):
    config = trainer_stage_config(kind, tiny_model, data_dir, tmp_path / "out")
    ranks = launch(tmp_path / "record", kind, config, stop_on_rank=1)
    assert [(rank["ended"], rank["step"]) for rank in ranks] == [("cancelled", 1), ("cancelled", 1)]
    checkpoint = last_checkpoint(tmp_path / "out")
    assert checkpoint is not None and checkpoint.name == "checkpoint-1"
    assert (checkpoint / "rng_state_0.pth").exists() and (checkpoint / "rng_state_1.pth").exists()
    assert not (tmp_path / "out" / "model.safetensors").exists()  # no final model: nothing to register


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_a_rank_killed_mid_run_fails_the_whole_run_and_leaves_no_model(kind, tiny_model, data_dir, tmp_path):
    """The other rank must not wait forever in its next collective: the launcher sees the dead rank,
    stops the live one and fails; the output folder holds no final model and no metrics to register."""
    out = tmp_path / "out"
    done = run_launch(
        tmp_path / "record", kind, trainer_stage_config(kind, tiny_model, data_dir, out), kill_rank=1
    )
    assert done.returncode != 0
    assert "exitcode  : -9" in done.stderr  # torch.distributed.run names the rank the kernel killed
    assert not (tmp_path / "record" / "rank0.json").exists()  # rank 0 did not finish alone either
    assert not (out / "model.safetensors").exists() and not (out / "metrics.json").exists()
    assert last_checkpoint(out) is None


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
