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
