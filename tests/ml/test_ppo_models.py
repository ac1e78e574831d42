"""PPO against what real checkpoints bring: a reward model with its own tokenizer and template, the
reward bias in the value model, ptx at a scale that leaves PPO room, separate clips, no hidden decay."""

import math

import pytest
import torch

from tests.ml.conftest import FAST
from tests.ml.test_ppo import count_red, ppo_config
from training.ml import run_stage
from training.ml.config import load_config
from training.ml.ppo import PPOTrainer
from training.ml.progress import Reporter
from training.ml.render import Renderer
from training.ml.reward_model import score_pairs
from training.ml.runtime import load_scalar_model, load_tokenizer
from training.ml.tiny import build_tiny_model

OTHER_TEMPLATE = "Q: {prompt}\nA: "


@pytest.fixture(scope="module")
def foreign_rm(data_dir, tmp_path_factory):
    """A reward model with a tokenizer of its own (another vocabulary) and a prompt template of its own."""
    base = build_tiny_model(tmp_path_factory.mktemp("foreign"), vocab_size=300, seed=3)
    out = tmp_path_factory.mktemp("foreign_rm")
    config = {
        "model": str(base),
        "dataset": str(data_dir / "rankings.jsonl"),
        "output_dir": str(out),
        "prompt_template": OTHER_TEMPLATE,
        "learning_rate": 1e-3,
        "max_steps": 4,
        **FAST,
    }
    run_stage("rm", config, echo=False)
    return out


def trainer_for(config) -> PPOTrainer:
    return PPOTrainer(load_config("ppo", overrides=config), Reporter(echo=False))


def test_the_value_model_starts_at_the_reward_models_score_bias_included(
    sft_model, rm_run, data_dir, tmp_path
):
    rm_folder = rm_run[0]
    trainer = trainer_for(ppo_config(sft_model, data_dir, tmp_path, reward_model=str(rm_folder)))
    assert trainer.scorer.bias != 0.0
    tokenizer = trainer.tokenizer
    ids = torch.tensor([tokenizer("What does the cat do?\nThe cat runs. It is happy.")["input_ids"]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        value_at_end = trainer.accelerator.unwrap_model(trainer.model).value(ids, mask)[0, -1]
        score = trainer.scorer(ids, mask, ["What does the cat do?"], [" The cat runs. It is happy."])[0]
    assert value_at_end.item() == pytest.approx(score.item(), abs=1e-4)


def test_a_reward_model_with_its_own_tokenizer_reads_what_it_was_trained_on(
    sft_model, foreign_rm, data_dir, tmp_path
):
    trainer = trainer_for(ppo_config(sft_model, data_dir, tmp_path, reward_model=str(foreign_rm)))
    assert not trainer.scorer.reuse_ids and trainer.scorer.renderer.prompt_template == OTHER_TEMPLATE
    value = trainer.accelerator.unwrap_model(trainer.model).value.scalar_model
    assert (
        value.config.vocab_size == len(trainer.tokenizer) != len(trainer.scorer.tokenizer)
    )  # from the policy
    prompt, response = "What does the cat do?", "The cat runs. It is happy."
    ids = torch.tensor([trainer.renderer.scored_ids(prompt, response, 100)])
    got = trainer.scorer(ids, torch.ones_like(ids), [prompt], [response])
    tokenizer = load_tokenizer(str(foreign_rm))
    rm = load_scalar_model(str(foreign_rm), tokenizer.pad_token_id, trainable=False)
    expected = (
        score_pairs(rm, Renderer(tokenizer, OTHER_TEMPLATE), [(prompt, response)]) + trainer.scorer.bias
    )
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)
    metrics = run_stage(
        "ppo", ppo_config(sft_model, data_dir, tmp_path, reward_model=str(foreign_rm), steps=1), echo=False
    )
    assert math.isfinite(metrics["reward"])


def test_a_value_model_with_another_tokenizer_is_refused(sft_model, foreign_rm, data_dir, tmp_path):
    from training.ml import ConfigError

    with pytest.raises(ConfigError, match="another tokenizer than the policy"):
        trainer_for(
            ppo_config(
                sft_model, data_dir, tmp_path, reward_model=str(foreign_rm), value_model=str(foreign_rm)
            )
        )


def test_ptx_pulls_about_as_hard_as_ppo_at_the_default_scale(sft_model, rm_run, data_dir, tmp_path):
    """With the paper's 27.8 on our token means, ptx was 60-106x the PPO gradient at the first step."""
    events = []
    config = ppo_config(
        sft_model,
        data_dir,
        tmp_path,
        steps=1,
        reward_model=str(rm_run[0]),
        ptx_dataset=str(data_dir / "sft.jsonl"),
    )
    run_stage("ppo", config, progress=events.append, echo=False)
    first = events[0]["metrics"]
    assert 0.1 <= first["ptx/grad_ratio"] <= 10
    assert first["ptx/grad_norm"] > 0 and first["pg/grad_norm"] > 0


def test_adamw_applies_no_hidden_weight_decay(sft_model, data_dir, tmp_path):
    config = load_config("ppo", overrides=ppo_config(sft_model, data_dir, tmp_path))
    trainer = PPOTrainer(config, Reporter(echo=False), reward_fn=count_red)
    assert [g["weight_decay"] for g in trainer.optimizer.param_groups] == [0.0, 0.0]


def test_policy_and_value_are_clipped_apart(sft_model, data_dir, tmp_path):
    """One shared clip let the value model's large early gradients shrink the policy's step."""
    config = ppo_config(
        sft_model, data_dir, tmp_path, steps=1, max_grad_norm=1e-12, value_max_grad_norm=100.0
    )
    trainer = PPOTrainer(load_config("ppo", overrides=config), Reporter(echo=False), reward_fn=count_red)
    model = trainer.accelerator.unwrap_model(trainer.model)
    policy, value = model.policy, model.value
    before_policy = [p.detach().clone() for p in policy.parameters()]
    before_value = [p.detach().clone() for p in value.parameters()]
    trainer.train_step()
    policy_moved = max(
        (p - b).abs().max().item() for p, b in zip(policy.parameters(), before_policy, strict=True)
    )
    value_moved = max(
        (p - b).abs().max().item() for p, b in zip(value.parameters(), before_value, strict=True)
    )
    assert policy_moved < 1e-6 < 1e-4 < value_moved


def test_held_out_prompts_are_scored_during_training(sft_model, data_dir, tmp_path):
    events = []
    config = ppo_config(
        sft_model, data_dir, tmp_path, steps=2, eval_steps=1, eval_prompts=4, valid_fraction=0.3
    )
    run_stage("ppo", config, progress=events.append, reward_fn=count_red, echo=False)
    assert all(math.isfinite(e["metrics"]["eval/reward"]) for e in events)
    assert all(math.isfinite(e["metrics"]["eval/kl"]) for e in events)
