"""The automatic evaluation after a training run, on tiny CPU models (no download)."""

import json

import pytest

from training.ml.evaluation import auto_evaluate


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    import torch

    from training.ml.runtime import load_causal_lm, load_scalar_model, load_tokenizer
    from training.ml.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("auto_eval")
    policy = build_tiny_model(root / "policy", seed=0)
    tokenizer = load_tokenizer(str(policy))
    parent = load_causal_lm(str(policy), trainable=False)
    with torch.no_grad():
        for p in parent.parameters():
            p.add_(0.5 * torch.randn_like(p))
    parent.save_pretrained(root / "parent")
    tokenizer.save_pretrained(root / "parent")
    rm = load_scalar_model(str(policy), tokenizer.pad_token_id, trainable=False)
    rm.save_pretrained(root / "rm")
    tokenizer.save_pretrained(root / "rm")
    (root / "rm" / "metrics.json").write_text(json.dumps({"eval_accuracy": 0.7}))
    prompts = root / "prompts.jsonl"
    rows = [
        {"prompt": f"What colour is the {a}?", "split": s}
        for a, s in zip(
            ["cat", "dog", "bird", "fish", "lion", "bear"], ["valid"] * 4 + ["train"] * 2, strict=True
        )
    ]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {
        "policy": str(policy),
        "parent": str(root / "parent"),
        "rm": str(root / "rm"),
        "prompts": str(prompts),
    }


def test_a_policy_against_itself_wins_half_and_has_no_kl(folders):
    result = auto_evaluate(
        policy_dir=folders["policy"],
        parent_dir=folders["policy"],
        reward_model_dir=folders["rm"],
        sft_dir=folders["policy"],
        prompts_file=folders["prompts"],
        max_new_tokens=6,
    )
    assert result["prompts"] == 4 and result["split"] == "valid"  # valid rows only
    assert result["rm_win_rate"] == 0.5  # the same samples (same seed), scored equal: ties count half
    assert result["kl_to_sft"] == 0.0
    assert result["rm_heldout_accuracy"] == 0.7
    json.dumps(result)  # storable in ModelVersion.metrics as it is


def test_a_different_parent_and_sft(folders):
    result = auto_evaluate(
        policy_dir=folders["policy"],
        parent_dir=folders["parent"],
        reward_model_dir=folders["rm"],
        sft_dir=folders["parent"],
        prompts_file=folders["prompts"],
        max_new_tokens=6,
    )
    assert 0.0 <= result["rm_win_rate_low"] <= result["rm_win_rate"] <= result["rm_win_rate_high"] <= 1.0
    assert result["kl_to_sft"] > 0.0  # the k3 estimate: positive whenever the two models differ
    assert isinstance(result["rm_score_policy"], float)


def test_no_valid_prompts_is_an_error_that_says_so(folders, tmp_path):
    from training.ml.errors import DatasetError

    only_train = tmp_path / "p.jsonl"
    only_train.write_text(json.dumps({"prompt": "hi", "split": "train"}) + "\n")
    with pytest.raises(DatasetError, match="no prompts of the 'valid' split"):
        auto_evaluate(
            policy_dir=folders["policy"],
            parent_dir=folders["parent"],
            reward_model_dir=folders["rm"],
            sft_dir=None,
            prompts_file=str(only_train),
        )


def test_without_a_reward_model_only_the_kl_is_measured(folders):
    result = auto_evaluate(
        policy_dir=folders["policy"],
        parent_dir=folders["parent"],
        reward_model_dir=None,
        sft_dir=folders["parent"],
        prompts_file=folders["prompts"],
        max_new_tokens=4,
    )
    assert (
        result["rm_win_rate"] is None and result["rm_heldout_accuracy"] is None and result["kl_to_sft"] != 0.0
    )
