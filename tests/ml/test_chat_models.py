"""Every stage on a checkpoint shaped like a real chat model (bf16 weights, chat template with its own BOS,
eos != pad, two stop tokens, sampling settings in its generation_config), fed conversational rows."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from tests.ml import factories
from tests.ml.conftest import FAST
from training.ml import run_stage
from training.ml.checkpoints import read_config
from training.ml.config import load_config
from training.ml.ppo import PPOTrainer
from training.ml.progress import Reporter
from training.ml.runtime import load_tokenizer


@pytest.fixture(scope="module")
def chat_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chat_data")
    rankings = factories.ranking_rows(count=40)
    factories.write_jsonl(folder / "sft.jsonl", factories.conversational(factories.sft_rows()))
    factories.write_jsonl(folder / "rankings.jsonl", factories.conversational(rankings))
    factories.write_jsonl(folder / "pairs.jsonl", factories.conversational(factories.pair_rows(rankings)))
    factories.write_jsonl(folder / "prompts.jsonl", factories.conversational(factories.prompt_rows()))
    return folder


@pytest.fixture(scope="module")
def chat_sft(chat_model, chat_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("chat_sft")
    config = {
        "model": str(chat_model),
        "dataset": str(chat_data / "sft.jsonl"),
        "output_dir": str(out),
        "learning_rate": 3e-3,
        "num_train_epochs": 4,
        **FAST,
    }
    return out, run_stage("sft", config, echo=False)


def test_sft_learns_conversations_through_the_chat_template_and_saves_bf16(chat_sft):
    out, metrics = chat_sft
    assert metrics["eval_loss"] < metrics["eval_loss_start"] - 1.0
    assert next(iter(load_file(out / "model.safetensors").values())).dtype == torch.bfloat16
    assert read_config(out)["chat_template"] == "auto"


def test_the_reward_model_trains_on_conversational_rankings(chat_sft, chat_data, tmp_path):
    config = {
        "model": str(chat_sft[0]),
        "dataset": str(chat_data / "rankings.jsonl"),
        "output_dir": str(tmp_path),
        "learning_rate": 1e-3,
        "max_steps": 3,
        **FAST,
    }
    metrics = run_stage("rm", config, echo=False)
    assert (
        metrics["eval_pairs"] > 0 and math.isfinite(metrics["eval_accuracy"]) and metrics["reward_bias"] != 0
    )


def test_dpo_trains_on_conversational_pairs(chat_sft, chat_data, tmp_path):
    config = {
        "model": str(chat_sft[0]),
        "dataset": str(chat_data / "pairs.jsonl"),
        "output_dir": str(tmp_path),
        "learning_rate": 1e-3,
        "max_steps": 3,
        **FAST,
    }
    metrics = run_stage("dpo", config, echo=False)
    assert metrics["margin"] > metrics["margin_start"]


def test_a_response_without_any_stop_token_pays_the_missing_eos_penalty(chat_sft, chat_data, tmp_path):
    """The model stops at <|im_end|> or <|endoftext|> (its generation_config): either one ends a response."""
    config = {
        "model": str(chat_sft[0]),
        "dataset": str(chat_data / "prompts.jsonl"),
        "output_dir": str(tmp_path),
        "max_new_tokens": 12,
        "missing_eos_penalty": 1.0,
        "batch_size": 16,
        "mini_batch_size": 8,
        "micro_batch_size": 8,
    }
    trainer = PPOTrainer(
        load_config("ppo", overrides=config), Reporter(echo=False), reward_fn=lambda p, r: [0.0] * len(r)
    )
    assert len(trainer.stop_ids) == 2
    rows = trainer.prompts * 3
    episodes, _ = trainer.rollout(rows)
    stops = torch.isin(episodes.response, torch.tensor(trainer.stop_ids)) & (episodes.response_mask == 1)
    ended = stops.any(1)
    assert 0 < ended.sum() < len(rows)  # some stopped, some ran out of tokens
    assert episodes.scores.tolist() == [0.0 if e else -1.0 for e in ended.tolist()]


def test_ppo_and_generate_run_on_the_chat_checkpoint(chat_sft, chat_data, tmp_path):
    config = {
        "model": str(chat_sft[0]),
        "dataset": str(chat_data / "prompts.jsonl"),
        "output_dir": str(tmp_path / "ppo"),
        "steps": 2,
        "batch_size": 8,
        "mini_batch_size": 8,
        "micro_batch_size": 4,
        "max_new_tokens": 8,
        "ptx_dataset": str(chat_data / "sft.jsonl"),
        "ema_decay": 0.9,
        "progress_bar": False,
    }
    metrics = run_stage("ppo", config, reward_fn=lambda p, r: [float(len(x)) for x in r], echo=False)
    assert metrics["steps"] == 2 and math.isfinite(metrics["ptx/grad_ratio"])
    assert next(iter(load_file(tmp_path / "ppo" / "model.safetensors").values())).dtype == torch.bfloat16

    out = tmp_path / "gen"
    run_stage(
        "generate",
        {
            "model": str(tmp_path / "ppo"),
            "dataset": str(chat_data / "prompts.jsonl"),
            "output_dir": str(out),
            "num_samples": 2,
            "max_new_tokens": 6,
            "progress_bar": False,
        },
        echo=False,
    )
    lines = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    specials = set(load_tokenizer(str(chat_sft[0])).all_special_tokens)
    assert lines and all(not any(s in c for s in specials) for line in lines for c in line["completions"])
    assert lines[0]["prompt"] == [{"role": "user", "content": "What colour is the cat?"}]
