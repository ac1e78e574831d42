"""Every stage trains from the formats people publish, with no code to write: messages (ultrachat),
implicit-prompt transcripts (HH-RLHF), UltraFeedback binarized's named splits, in JSONL, Parquet or a
`datasets` save_to_disk folder. The files are small samples the tests write themselves."""

import math

import pytest

from tests.ml import public_formats as public
from tests.ml.conftest import FAST
from training.ml import run_stage

STEPS = {"max_steps": 2, "per_device_train_batch_size": 2, **FAST}


@pytest.fixture(scope="module")
def ultrafeedback(tmp_path_factory):
    return public.save_dataset_dict(
        tmp_path_factory.mktemp("uf") / "ultrafeedback", public.ultrafeedback_splits()
    )


def test_sft_on_multi_turn_messages_from_parquet(chat_model, tmp_path):
    data = public.write_parquet(tmp_path / "ultrachat.parquet", public.ultrachat_rows() * 4)
    metrics = run_stage(
        "sft",
        {"model": str(chat_model), "dataset": str(data), "output_dir": str(tmp_path / "out"), **STEPS},
        echo=False,
    )
    assert metrics["steps"] == 2 and metrics["train_rows"] + metrics["valid_rows"] == 8


def test_sft_and_dpo_on_ultrafeedbacks_named_splits(chat_model, ultrafeedback, tmp_path):
    sft = run_stage(
        "sft",
        {
            "model": str(chat_model),
            "dataset": str(ultrafeedback),
            "splits": "train_sft,test_sft",
            "output_dir": str(tmp_path / "sft"),
            **STEPS,
        },
        echo=False,
    )
    assert (sft["train_rows"], sft["valid_rows"]) == (3, 2)  # test_sft evaluates, as in TRL's scripts
    dpo = run_stage(
        "dpo",
        {
            "model": str(chat_model),
            "dataset": str(ultrafeedback),
            "splits": "train_prefs,test_prefs",
            "output_dir": str(tmp_path / "dpo"),
            **STEPS,
        },
        echo=False,
    )
    assert (dpo["train_pairs"], dpo["valid_pairs"]) == (3, 2) and math.isfinite(dpo["margin"])


def test_a_reward_model_on_implicit_prompt_transcripts(sft_model, tmp_path):
    data = public.write_jsonl(tmp_path / "hh.jsonl", public.hh_rlhf_rows() * 5)
    config = {
        "model": str(sft_model),
        "dataset": str(data),
        "prompt_template": "{prompt}",  # the transcript carries its own "\n\nHuman: ... \n\nAssistant:"
        "output_dir": str(tmp_path / "rm"),
        **STEPS,
    }
    metrics = run_stage("rm", config, echo=False)
    assert metrics["steps"] == 2 and metrics["train_rankings"] + metrics["valid_rankings"] == 10


def test_ppo_takes_its_prompts_from_a_preference_dataset(chat_model, ultrafeedback, tmp_path):
    config = {
        "model": str(chat_model),
        "dataset": str(ultrafeedback),
        "splits": "train_prefs",
        "output_dir": str(tmp_path),
        "steps": 1,
        "batch_size": 4,
        "mini_batch_size": 4,
        "micro_batch_size": 2,
        "max_new_tokens": 4,
        "progress_bar": False,
    }
    metrics = run_stage(
        "ppo", config, reward_fn=lambda prompts, responses: [1.0] * len(responses), echo=False
    )
    assert metrics["steps"] == 1 and metrics["reward"] == 1.0
