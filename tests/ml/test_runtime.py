"""Loading real checkpoints: dtypes, dropout, the hub, and the library versions the code runs on."""

import socket
import tomllib
from pathlib import Path

import pytest
import torch
from packaging.version import Version
from safetensors.torch import load_file

from tests.ml.conftest import FAST
from training.ml import CheckpointError, run_stage
from training.ml.runtime import (
    disable_dropout,
    load_causal_lm,
    load_tokenizer,
    refuse_half_trainables,
)

REPO = Path(__file__).resolve().parents[2]


def moved_share(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> float:
    changed = total = 0
    for name, tensor in before.items():
        if name in after and tensor.is_floating_point():
            changed += (after[name].float() != tensor.float()).sum().item()
            total += tensor.numel()
    return changed / total


def test_a_bf16_checkpoint_trains_with_fp32_weights_and_moves_at_a_tiny_learning_rate(
    chat_model, data_dir, tmp_path
):
    """AdamW on bf16 weights loses updates below bf16's resolution: at lr 1e-6, 3 steps moved 2.8% of
    a bf16 model's weights and 98.6% of an fp32 one's. The stage must train an fp32 copy."""
    original = load_file(chat_model / "model.safetensors")
    assert next(iter(original.values())).dtype == torch.bfloat16
    config = {
        "model": str(chat_model),
        "dataset": str(data_dir / "sft.jsonl"),
        "output_dir": str(tmp_path),
        "learning_rate": 1e-6,
        "max_steps": 3,
        "lr_scheduler": "constant",
        **{**FAST, "save_steps": 3},
    }
    run_stage("sft", config, echo=False)
    trained = load_file(tmp_path / "checkpoint-3" / "model.safetensors")  # as it was trained
    assert next(iter(trained.values())).dtype == torch.float32
    assert moved_share(original, trained) > 0.5  # every weight with a gradient (unused embeddings have none)
    final = load_file(tmp_path / "model.safetensors")  # saved the way it came: bf16, half the size
    assert next(iter(final.values())).dtype == torch.bfloat16


def test_frozen_models_load_in_the_runs_half_precision_and_trainable_ones_in_fp32(chat_model):
    assert next(load_causal_lm(str(chat_model), trainable=True).parameters()).dtype == torch.float32
    frozen = load_causal_lm(str(chat_model), trainable=False, precision="bf16")
    assert next(frozen.parameters()).dtype == torch.bfloat16
    assert not any(p.requires_grad for p in frozen.parameters()) and not frozen.training


def test_a_trainable_half_precision_parameter_is_refused(chat_model):
    model = load_causal_lm(str(chat_model), trainable=True).to(torch.bfloat16)
    with pytest.raises(CheckpointError, match="no fp32 master copy"):
        refuse_half_trainables(model)
    refuse_half_trainables(model, engine_keeps_master=True)  # DeepSpeed keeps its own fp32 copy
    model.requires_grad_(False)
    refuse_half_trainables(model)  # frozen half weights are fine


def test_dropout_that_attention_reads_at_call_time_is_turned_off(llama_model):
    """Llama's attention reads `self.attention_dropout` (0.5 here) in training mode: no nn.Dropout shows
    it, so switching nn.Dropout modules off alone left it on."""
    model = load_causal_lm(str(llama_model), trainable=True)
    model.config._attn_implementation = "eager"
    model.train()
    ids = torch.tensor([[1, 5, 9, 12, 7, 3]])
    torch.manual_seed(0)
    assert not torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits)
    disable_dropout(model)
    assert torch.equal(model(input_ids=ids).logits, model(input_ids=ids).logits)


def test_hub_kernels_are_off_unless_the_config_asks(sft_model, data_dir, tmp_path, monkeypatch):
    from transformers.integrations.hub_kernels import _kernels_enabled

    monkeypatch.delenv("USE_HUB_KERNELS", raising=False)
    config = {
        "model": str(sft_model),
        "dataset": str(data_dir / "prompts.jsonl"),
        "output_dir": str(tmp_path),
        "num_samples": 1,
        "max_new_tokens": 2,
        "progress_bar": False,
    }
    run_stage("generate", config, echo=False)
    assert not _kernels_enabled()  # transformers' default is on: it would ask the hub on a GPU
    run_stage("generate", {**config, "hub_kernels": True, "resume": False}, echo=False)
    assert _kernels_enabled()


def test_a_local_model_folder_loads_with_no_network(chat_model, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled by the test")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    load_tokenizer(str(chat_model))
    load_causal_lm(str(chat_model), trainable=False)
    assert attempts == []


def test_the_dependency_floors_are_versions_the_code_runs_on():
    """transformers before 5 has no TrainingArguments(activation_checkpointing=...) and reads a float
    warmup_steps as steps; the suite runs on these releases, so they are the floors."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["train"]
    floors = {d.split(">=")[0]: Version(d.split(">=")[1].split(",")[0]) for d in deps if ">=" in d}
    assert floors["transformers"] >= Version("5.25")
    assert floors["accelerate"] >= Version("1.16")
    assert floors["datasets"] >= Version("5.2")
    assert floors["trl"] >= Version("1.16")
