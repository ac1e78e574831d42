"""Session fixtures: one tiny model, one data folder, one SFT and one reward model for all ML tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.ml import factories

# Tiny models gain nothing from intra-op threads, and on a shared 2-core box spinning threads slow them down.
torch.set_num_threads(1)
FAST = {"progress_bar": False, "logging_steps": 1, "save_steps": 1000}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from training.ml.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    rankings = factories.ranking_rows()
    factories.write_jsonl(folder / "sft.jsonl", factories.sft_rows())
    factories.write_jsonl(folder / "rankings.jsonl", rankings)
    factories.write_jsonl(folder / "pairs.jsonl", factories.pair_rows(rankings))
    factories.write_jsonl(folder / "prompts.jsonl", factories.prompt_rows())
    return folder


@pytest.fixture(scope="session")
def sft_run(tiny_model, data_dir, tmp_path_factory) -> tuple[Path, dict]:
    from training.ml import run_stage

    out = tmp_path_factory.mktemp("sft")
    config = {
        "model": str(tiny_model),
        "dataset": str(data_dir / "sft.jsonl"),
        "output_dir": str(out),
        "learning_rate": 3e-3,
        "num_train_epochs": 10,
        "per_device_train_batch_size": 8,
        **FAST,
    }
    return out, run_stage("sft", config, echo=False)


@pytest.fixture(scope="session")
def sft_model(sft_run) -> Path:
    return sft_run[0]


@pytest.fixture(scope="session")
def rm_run(sft_model, data_dir, tmp_path_factory) -> tuple[Path, dict]:
    from training.ml import run_stage

    out = tmp_path_factory.mktemp("rm")
    config = {
        "model": str(sft_model),
        "dataset": str(data_dir / "rankings.jsonl"),
        "output_dir": str(out),
        "learning_rate": 1e-3,
        "num_train_epochs": 2,
        "per_device_train_batch_size": 8,
        **FAST,
    }
    return out, run_stage("rm", config, echo=False)


# A tiny checkpoint with what real ones bring: bf16 weights, absolute positions (GPT-2), a chat template
# that writes its own BOS beside a tokenizer that adds one too, eos != pad, two stop tokens, and a
# generation_config full of sampling settings that a rollout must not pick up.
CHECKPOINT_SAMPLING = {
    "do_sample": True,
    "temperature": 0.6,
    "top_k": 5,
    "top_p": 0.8,
    "repetition_penalty": 1.8,
    "no_repeat_ngram_size": 1,
}


@pytest.fixture(scope="session")
def chat_model(tmp_path_factory) -> Path:
    from training.ml.tiny import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("chat"), arch="gpt2", generation=CHECKPOINT_SAMPLING)


@pytest.fixture(scope="session")
def llama_model(tmp_path_factory) -> Path:
    """Rotary positions and an attention dropout rate that the attention code reads at call time."""
    from training.ml.tiny import build_tiny_chat_model

    return build_tiny_chat_model(tmp_path_factory.mktemp("llama"), arch="llama", attention_dropout=0.5)
