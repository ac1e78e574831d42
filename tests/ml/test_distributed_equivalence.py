"""Two processes train SFT, the reward model and DPO to the same result as one, for the same global batch.

One process runs a per-device batch of 2 with 2 accumulation steps; two processes (torch.distributed.run,
gloo on the CPU, accelerate's MULTI_CPU, which is DDP) run a per-device batch of 2 each. Both take the
same 4 examples per optimizer step in the same order: accelerate deals the batches of one seeded
sampler out to the ranks in turn, rank 0 the first, rank 1 the second, as accumulation takes them one
after the other. The model has no dropout (whose masks depend on each rank's random stream).

Tolerance, and why: accumulation sums g1/2 + g2/2 and DDP averages (g1 + g2)/2; halving is exact in
binary floating point, so on one machine the two agree to the last bit (and do, here). The bounds
(1e-6 relative on losses, 1e-6 absolute on weights that move by about 3e-3) only leave room for a
reordered sum elsewhere: one example dealt to the wrong rank or counted twice, or a loss not divided
by the number of ranks, changes the per-step losses and the weights by orders of magnitude more.
The held-out figures (the reward model's accuracy, log loss and bias, the DPO margins) are scored on
each rank's share and gathered; items are padded to another width in another batch, so they are held
to 1e-5. SFT's eval_loss is left out: it is the Trainer's own, which averages batch losses of batches
that accelerate fills up with repeated items to give every rank as many, and so differs slightly
(about 0.3% here) between one process and two.

FSDP is not compared: accelerate 1.16 turns FSDP on only on GPU-like devices, so on the CPU a run that
asks for it is DDP (see test_fsdp_asked_for_on_the_cpu_runs_as_ddp_and_says_so); torch's own FSDP2
(fully_shard) does shard on the CPU with gloo, but nothing here reaches it through accelerate.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.ml.two_ranks import launch, run_launch
from training.ml import run_stage
from training.ml.checkpoints import read_history

pytestmark = pytest.mark.slow

LOSS_RTOL = 1e-6
WEIGHT_ATOL = 1e-6
EVAL_RTOL = 1e-5
DATASETS = {"sft": "sft.jsonl", "rm": "rankings.jsonl", "dpo": "pairs.jsonl"}
HELD_OUT = {
    "sft": ["train_loss"],
    "rm": ["train_loss", "eval_accuracy", "eval_log_loss", "reward_bias"],
    "dpo": ["train_loss", "margin_start", "margin"],
}


@pytest.fixture(scope="module")
def still_model(tiny_model, tmp_path_factory) -> Path:
    """The tiny model with every dropout rate at 0."""
    folder = Path(shutil.copytree(tiny_model, tmp_path_factory.mktemp("still") / "model"))
    config = json.loads((folder / "config.json").read_text())
    config.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, summary_first_dropout=0.0)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def stage_config(kind: str, model: Path, data_dir: Path, out: Path, **overrides) -> dict:
    return {
        "model": str(model),
        "dataset": str(data_dir / DATASETS[kind]),
        "output_dir": str(out),
        "learning_rate": 1e-3,
        "max_steps": 4,
        "per_device_train_batch_size": 2,
        # 5 does not divide the held-out items: the last round pads a rank with repeats to drop again
        "per_device_eval_batch_size": 5,
        "logging_steps": 1,
        "save_steps": 1000,
        "progress_bar": False,
        **overrides,
    }


def losses(out: Path) -> list[float]:
    return [row["loss"] for row in read_history(out) if "loss" in row]


@pytest.mark.parametrize("kind", ["sft", "rm", "dpo"])
def test_two_processes_train_as_one_with_the_same_global_batch(kind, still_model, data_dir, tmp_path):
    one = run_stage(
        kind,
        stage_config(kind, still_model, data_dir, tmp_path / "one", gradient_accumulation_steps=2),
        echo=False,
    )
    ranks = launch(tmp_path / "record", kind, stage_config(kind, still_model, data_dir, tmp_path / "two"))
    assert [rank["engine"] for rank in ranks] == ["DistributedType.MULTI_CPU"] * 2
    two = ranks[0]["metrics"]
    for name in HELD_OUT[kind]:
        assert ranks[1]["metrics"][name] == two[name], name  # every rank ends with the gathered figures

    assert len(losses(tmp_path / "one")) == 4
    assert losses(tmp_path / "two") == pytest.approx(losses(tmp_path / "one"), rel=LOSS_RTOL)
    first, second = (
        load_file(tmp_path / "one" / "model.safetensors"),
        load_file(tmp_path / "two" / "model.safetensors"),
    )
    start = load_file(still_model / "model.safetensors")
    assert first.keys() == second.keys()
    moved = max((first[name] - start[name]).abs().max().item() for name in start if name in first)
    assert moved > 1e-3  # the runs trained, so equal weights mean something
    assert max((first[name] - second[name]).abs().max().item() for name in first) <= WEIGHT_ATOL
    assert two["steps"] == one["steps"] == 4
    for name in HELD_OUT[kind]:
        assert two[name] == pytest.approx(one[name], rel=EVAL_RTOL), name


def test_fsdp_asked_for_on_the_cpu_runs_as_ddp_and_says_so(still_model, data_dir, tmp_path):
    config = stage_config("rm", still_model, data_dir, tmp_path / "out", max_steps=1)
    config["extra_args"] = {"fsdp": True, "fsdp_config": {"transformer_layer_cls_to_wrap": ["GPT2Block"]}}
    ranks = launch(tmp_path / "record", "rm", config)
    assert [rank["engine"] for rank in ranks] == ["DistributedType.MULTI_CPU"] * 2  # not FSDP
    assert "accelerate runs FSDP only on GPUs: on the CPU this run is DDP" in ranks[0]["events"][0]["log"]


def test_fsdp_loading_on_rank_zero_only_is_refused_on_the_cpu(still_model, data_dir, tmp_path):
    """transformers would load meta weights on rank 1 (it reads only the environment), accelerate would
    never fill them, and the Trainer would die with 'Cannot copy out of meta tensor'."""
    env = {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2", "FSDP_CPU_RAM_EFFICIENT_LOADING": "true"}
    config = stage_config("sft", still_model, data_dir, tmp_path / "out", max_steps=1)
    done = run_launch(tmp_path / "record", "sft", config, env=env)
    assert done.returncode != 0
    assert "ConfigError: FSDP with cpu_ram_efficient_loading cannot run on the CPU" in done.stderr
    assert "meta tensor" not in done.stderr
