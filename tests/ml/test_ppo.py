import math

import pytest

from training.ml import TrainingCancelled, run_stage
from training.ml.checkpoints import last_checkpoint, read_history, read_metrics


def count_red(prompts: list[str], responses: list[str]) -> list[float]:
    """A reward the tiny model can learn: how often the response says 'red'."""
    return [float(r.count("red")) for r in responses]


def ppo_config(sft_model, data_dir, out, **overrides):
    return {
        "model": str(sft_model),
        "dataset": str(data_dir / "prompts.jsonl"),
        "output_dir": str(out),
        "learning_rate": 1e-3,
        "steps": 12,
        "batch_size": 16,
        "mini_batch_size": 8,
        "micro_batch_size": 8,
        "ppo_epochs": 2,
        "max_new_tokens": 8,
        "progress_bar": False,
        **overrides,
    }


def run(config, **kwargs):
    events = []
    metrics = run_stage("ppo", config, progress=events.append, reward_fn=count_red, echo=False, **kwargs)
    return metrics, [e["metrics"] for e in events]


def tail_mean(steps, key, n=3):
    return sum(s[key] for s in steps[-n:]) / n


@pytest.fixture(scope="module")
def low_beta_run(sft_model, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo")
    return out, *run(ppo_config(sft_model, data_dir, out, kl_coef=0.02))


@pytest.fixture(scope="module")
def low_beta(low_beta_run):
    return low_beta_run[1:]


def test_the_mean_reward_rises_while_the_kl_stays_finite(low_beta):
    metrics, steps = low_beta
    assert len(steps) == 12
    assert tail_mean(steps, "reward") > tail_mean(steps[:3], "reward") + 0.8
    assert all(math.isfinite(s["kl"]) for s in steps) and steps[0]["kl"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["reward"] == steps[-1]["reward"] and metrics["reward_first"] == steps[0]["reward"]
    for key in (
        "entropy",
        "clip_frac",
        "value_loss",
        "approx_kl",
        "response_length",
        "policy_loss",
        "time/generate",
        "time/score",
        "time/update",
    ):
        assert math.isfinite(metrics[key]), key


def test_a_very_high_beta_keeps_the_policy_near_the_reference(low_beta, sft_model, data_dir, tmp_path):
    _, free = low_beta
    _, tied = run(ppo_config(sft_model, data_dir, tmp_path, kl_coef=3.0))
    assert tail_mean(tied, "kl") < 1.5 < tail_mean(free, "kl")
    assert tail_mean(tied, "reward") < tail_mean(free, "reward") - 0.8


def test_the_output_folder_is_a_policy_with_its_history(low_beta_run):
    from transformers import AutoModelForCausalLM

    out = low_beta_run[0]
    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "gpt2"
    assert len(read_history(out)) == 12 and read_metrics(out)["steps"] == 12


def test_a_restart_resumes_from_the_last_checkpoint(sft_model, data_dir, tmp_path):
    config = ppo_config(sft_model, data_dir, tmp_path, steps=2, save_steps=1)
    events = []
    with pytest.raises(TrainingCancelled) as cancelled:
        run_stage(
            "ppo",
            config,
            progress=events.append,
            should_stop=lambda: bool(events),
            reward_fn=count_red,
            echo=False,
        )
    assert cancelled.value.step == 1 and last_checkpoint(tmp_path).name == "checkpoint-1"

    metrics, steps = run({**config, "steps": 3})
    assert len(steps) == 2  # steps 2 and 3 only
    assert metrics["steps"] == 3 and [row["step"] for row in read_history(tmp_path)] == [1, 2, 3]
    assert last_checkpoint(tmp_path).name == "checkpoint-3"


def test_reward_model_value_init_ptx_ema_and_adaptive_kl(sft_model, rm_run, data_dir, tmp_path):
    config = ppo_config(
        sft_model,
        data_dir,
        tmp_path,
        steps=2,
        reward_model=str(rm_run[0]),
        ptx_dataset=str(data_dir / "sft.jsonl"),
        ptx_coef=1.0,
        ptx_ratio=0.5,
        ema_decay=0.9,
        adaptive_kl=True,
        kl_target=0.5,
        missing_eos_penalty=1.0,
    )
    events = []
    metrics = run_stage("ppo", config, progress=events.append, echo=False)
    assert math.isfinite(metrics["ptx_loss"]) and math.isfinite(metrics["reward"])
    assert metrics["beta"] != 0.02  # the adaptive controller moved it
