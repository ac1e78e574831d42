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


def test_chunked_log_probs_equal_the_plain_ones_and_keep_no_fp32_vocabulary_tensor():
    """The update's log-probs come from bf16 logits chunk by chunk: the same values and gradients as
    log_softmax over the whole fp32 tensor, and the backward keeps nothing fp32 of vocabulary width."""
    import torch

    from training.ml.ppo_step import token_logprobs

    torch.manual_seed(0)
    logits = torch.randn(3, 10, 50, dtype=torch.bfloat16, requires_grad=True)
    tokens = torch.randint(0, 50, (3, 10))
    expected = torch.log_softmax(logits.float() / 0.7, -1).gather(-1, tokens[..., None]).squeeze(-1)
    (expected_grad,) = torch.autograd.grad(expected.sum(), logits)

    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        got = token_logprobs(logits, tokens, 0.7, chunk=4)
    (grad,) = torch.autograd.grad(got.sum(), logits)
    assert torch.allclose(got, expected, atol=1e-6) and torch.allclose(grad.float(), expected_grad.float())
    assert not [t for t in saved if t.dtype == torch.float32 and t.shape[-1] == 50]


def test_a_shared_trunk_with_gradient_checkpointing_learns_the_reward(sft_model, data_dir, tmp_path):
    """When memory is short: one trunk for policy and value, activations recomputed in the backward."""
    metrics, steps = run(
        ppo_config(
            sft_model, data_dir, tmp_path, shared_trunk=True, gradient_checkpointing=True, kl_coef=0.02
        )
    )
    assert tail_mean(steps, "reward") > tail_mean(steps[:3], "reward") + 0.8
    assert math.isfinite(metrics["value_loss"])


def test_gradient_checkpointing_takes_the_same_step(sft_model, data_dir, tmp_path):
    plain = run(ppo_config(sft_model, data_dir, tmp_path / "plain", steps=2))[1]
    recomputed = run(
        ppo_config(sft_model, data_dir, tmp_path / "ckpt", steps=2, gradient_checkpointing=True)
    )[1]
    for key in ("policy_loss", "value_loss", "reward", "kl", "entropy"):
        assert [s[key] for s in recomputed] == pytest.approx([s[key] for s in plain], rel=1e-5, abs=1e-7), key


def test_progress_reports_every_step_out_of_the_total(sft_model, data_dir, tmp_path):
    events = []
    run_stage(
        "ppo",
        ppo_config(sft_model, data_dir, tmp_path, steps=3),
        progress=events.append,
        reward_fn=count_red,
        echo=False,
    )
    assert [(e["step"], e["total"]) for e in events] == [(1, 3), (2, 3), (3, 3)]
    assert all(e["metrics"]["reward"] == e["metrics"]["reward"] and e["metrics"] for e in events)


@pytest.mark.parametrize("shared_trunk", [False, True])
def test_the_update_starts_from_the_rollouts_log_probs_and_values(
    sft_model, data_dir, tmp_path, shared_trunk
):
    """The rollout scores with the very forward the update runs, so the first PPO ratios are exactly 1."""
    import torch

    from training.ml.config import load_config
    from training.ml.ppo import PPOTrainer
    from training.ml.ppo_step import token_logprobs
    from training.ml.progress import Reporter

    config = ppo_config(sft_model, data_dir, tmp_path, shared_trunk=shared_trunk)
    trainer = PPOTrainer(load_config("ppo", overrides=config), Reporter(echo=False), reward_fn=count_red)
    ep, _ = trainer.rollout(trainer.prompts[:6])
    full, mask = ep.full
    with torch.no_grad():
        logits, values, _ = trainer.model(full, mask, ep.response.shape[1])
    logprobs = token_logprobs(logits, ep.response, 1.0, 4)
    assert torch.allclose(logprobs * ep.response_mask, ep.logprobs * ep.response_mask, atol=1e-5)
    assert torch.allclose(values, ep.values, atol=1e-5)


@pytest.mark.parametrize("ema_decay", [0.0, 0.5])
def test_the_saved_policy_holds_the_trained_weights_or_their_ema(sft_model, data_dir, tmp_path, ema_decay):
    import torch
    from safetensors.torch import load_file

    from training.ml.config import load_config
    from training.ml.ppo import PPOTrainer
    from training.ml.progress import Reporter

    config = ppo_config(sft_model, data_dir, tmp_path, ema_decay=ema_decay)
    trainer = PPOTrainer(load_config("ppo", overrides=config), Reporter(echo=False), reward_fn=count_red)
    trainer.train_step()
    policy = trainer.accelerator.unwrap_model(trainer.model).policy
    expected = {
        name: trainer.ema.shadow[name] if trainer.ema else p.detach() for name, p in policy.named_parameters()
    }
    trained = {name: p.detach().clone() for name, p in policy.named_parameters()}
    trainer.save_final()
    saved = load_file(tmp_path / "model.safetensors")
    assert saved.keys() <= expected.keys() and "transformer.wte.weight" in saved
    assert all(torch.equal(saved[name], expected[name].to(saved[name].dtype)) for name in saved)
    assert all(
        torch.equal(p, trained[name]) for name, p in policy.named_parameters()
    )  # EMA swapped out again
    if ema_decay:
        assert not torch.equal(saved["transformer.wte.weight"], trained["transformer.wte.weight"])
