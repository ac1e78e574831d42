"""PPO on several processes (torch.distributed.run, gloo on the CPU) takes the steps one process takes.

Two processes with half the batch each against one process with the whole batch: the same episodes
(sampling seeds follow the global episode index), the same whitening (over every rank), the same
token-mean losses (normalised by the whole minibatch's tokens), the same ptx sequences, so the same
losses and the same trained weights, up to float rounding (the micro-batches are padded to other
widths on each side). FSDP cannot run here: torch 2.13 shards on the CPU (fully_shard with gloo), but
accelerate 1.16 turns FSDP on only for accelerator devices, and on the CPU prepares DDP instead.

The launch's timeout is only a guard that turns a deadlock into a failure; no test measures time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from training.ml.checkpoints import last_checkpoint

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("ppo_ranks.py")
DEADLOCK_GUARD = 600  # seconds; a healthy launch needs a small fraction of it
ENV = {
    **os.environ,
    "ACCELERATE_USE_CPU": "1",  # without it accelerate sees no GPU and runs each process alone
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "PYTHONPATH": str(REPO),
}
# Losses and figures of 1 and 2 processes agree to this (relative) tolerance; measured: 1.6e-6 at
# worst (policy_loss), the saved weights 1.2e-7 apart.
TOLERANCE = 1e-4
COMPARED = (
    "policy_loss",
    "value_loss",
    "ptx_loss",
    "entropy",
    "approx_kl",
    "reward",
    "kl",
    "response_length",
)


def torchrun(processes: int, *args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
    ]
    try:
        return subprocess.run(
            [*command, *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=DEADLOCK_GUARD
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the processes never finished (a rank waits in a collective):\n{exc.stderr}")


def launch(processes: int, record: Path, config: dict) -> list[dict]:
    spec = record.with_suffix(".json")
    spec.write_text(json.dumps({"config": config, "record": str(record)}))
    done = torchrun(processes, str(DRIVER), str(spec))
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((record / f"rank{rank}.json").read_text()) for rank in range(processes)]
    assert all(rank["world_size"] == processes for rank in ranks)
    return ranks


def ppo_config(model: Path, data_dir: Path, out: Path, **overrides) -> dict:
    return {
        "model": str(model),
        "dataset": str(data_dir / "prompts.jsonl"),
        "output_dir": str(out),
        "learning_rate": 1e-3,
        "steps": 2,
        "ppo_epochs": 2,
        "micro_batch_size": 2,  # several backwards per optimizer step, accumulated by accelerate
        "generation_batch_size": 2,
        "max_new_tokens": 6,
        "ptx_dataset": str(data_dir / "sft.jsonl"),
        "ptx_coef": 0.5,
        "save_steps": 1000,
        "progress_bar": False,
        **overrides,
    }


@pytest.fixture(scope="module")
def one_and_two(sft_model, data_dir, tmp_path_factory) -> tuple[Path, list[dict], Path, list[dict]]:
    """The same global batch of 8 episodes: one process with 8, two processes with 4 each."""
    folder = tmp_path_factory.mktemp("ppo_world")
    one = ppo_config(sft_model, data_dir, folder / "one", batch_size=8, mini_batch_size=8)
    two = ppo_config(sft_model, data_dir, folder / "two", batch_size=4, mini_batch_size=4)
    return (
        folder / "one",
        launch(1, folder / "record_one", one),
        folder / "two",
        launch(2, folder / "record_two", two),
    )


def test_two_processes_run_ddp_and_report_the_same_figures_on_each_rank(one_and_two):
    _, one, _, two = one_and_two
    assert one[0]["engine"] == "single" and [r["engine"] for r in two] == ["ddp", "ddp"]
    assert [e["metrics"] for e in two[0]["events"]] == [e["metrics"] for e in two[1]["events"]]


def test_two_processes_take_the_steps_of_one_process_with_the_same_global_batch(one_and_two):
    _, one, _, two = one_and_two
    one_steps = [e["metrics"] for e in one[0]["events"]]
    two_steps = [e["metrics"] for e in two[0]["events"]]
    assert len(one_steps) == len(two_steps) == 2
    for a, b in zip(one_steps, two_steps, strict=True):
        for key in COMPARED:
            assert b[key] == pytest.approx(a[key], rel=TOLERANCE, abs=1e-6), key
    assert one_steps[1]["policy_loss"] != one_steps[0]["policy_loss"]  # the policy moved in between


def test_two_processes_save_the_weights_one_process_saves(one_and_two, sft_model):
    one_out, _, two_out, _ = one_and_two
    one, two = load_file(one_out / "model.safetensors"), load_file(two_out / "model.safetensors")
    start = load_file(Path(sft_model) / "model.safetensors")
    assert one.keys() == two.keys()
    moved = max((one[k].float() - start[k].float()).abs().max().item() for k in one)
    apart = max((one[k].float() - two[k].float()).abs().max().item() for k in one)
    assert apart < TOLERANCE * moved  # training moved the weights; the two runs moved them alike


def test_progress_reports_every_step_out_of_the_total(one_and_two):
    _, one, _, _ = one_and_two
    assert [(e["step"], e["total"]) for e in one[0]["events"]] == [(1, 2), (2, 2)]
    assert all(e["metrics"]["reward"] == e["metrics"]["reward"] for e in one[0]["events"])


def test_a_stop_file_stops_every_rank_of_the_command_line_at_one_step(sft_model, rm_run, data_dir, tmp_path):
    """The GPU worker cancels a launched stage by writing OUT/STOP; both ranks read it, at whatever
    step each one does, and leave together (ranks.any_rank) with a checkpoint, exit code 3."""
    out = tmp_path / "out"
    config = ppo_config(sft_model, data_dir, out, steps=50, batch_size=4, mini_batch_size=4)
    config.update(reward_model=str(rm_run[0]), ppo_epochs=1)
    args = [f"--{key}={value}" for key, value in config.items()]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.Popen(
        [*command, "-m", "training.ml", "ppo", *args],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    progress = out / "progress.jsonl"
    try:
        while not progress.exists() and proc.poll() is None:
            time.sleep(0.2)
        (out / "STOP").write_text("")
        _, err = proc.communicate(timeout=DEADLOCK_GUARD)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.fail("the ranks never stopped together (one waits in a collective)")
    assert proc.returncode != 0 and err.count("cancelled:") == 2, err[-3000:]
    steps = [json.loads(line)["step"] for line in progress.read_text().splitlines()]
    checkpoint = last_checkpoint(out)
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{steps[-1]}" and steps[-1] < 50
    assert json.loads((checkpoint / "ppo_state.json").read_text())["step"] == steps[-1]
    assert (checkpoint / "random_states_0.pkl").exists() and (checkpoint / "random_states_1.pkl").exists()
