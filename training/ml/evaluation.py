"""Automatic evaluation of a new policy after a training run, shown next to the human win rates.

    auto_evaluate(policy_dir=..., parent_dir=..., reward_model_dir=..., sft_dir=..., prompts_file=...)

1. Reward-model win rate of the policy over its parent on the valid split: one sampled response per
   prompt from each, both scored by the reward model; ties count half; 95% bootstrap interval.
2. The reward model's held-out pairwise accuracy, read from its metrics.json (eval_accuracy).
3. KL(policy || SFT): the mean over the policy's samples of log pi(y|x) - log pi_sft(y|x), summed over
   the response tokens (the Monte Carlo estimate of the per-sequence KL), in nats.

Plain arguments in, a dict out, nothing stored: training/services/auto_evaluation.py runs it after a PPO or
DPO run and keeps the result in ModelVersion.metrics["auto_eval"].
torch and transformers load only when the function runs (a Celery worker on the gpu queue).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from training.ml.render import Renderer, Text

CONFIDENCE = 0.95


def win_rate_interval(
    outcomes: list[float], *, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of per-prompt outcomes (1 win, 0.5 tie, 0 loss) and its percentile bootstrap interval."""
    import numpy as np

    values = np.asarray(outcomes, dtype=float)
    if not len(values):
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(values.mean()), float(low), float(high)


def _prompts(prompts_file: str, split: str, max_prompts: int) -> list:
    from training.ml.data import load_rows
    from training.ml.errors import DatasetError

    rows = [r for r in load_rows(prompts_file) if r.get("split") == split]
    if not rows:
        raise DatasetError(f"{prompts_file} has no prompts of the '{split}' split to evaluate on")
    return [r["prompt"] for r in rows[:max_prompts]]


class _Sampler:
    """A causal LM with its tokenizer: samples responses and scores log-probabilities of responses.
    Prompts are rendered as the training stages render them (training.ml.render), and samples are
    drawn from softmax(logits / T) alone, as in PPO."""

    def __init__(
        self, path: str, device: torch.device, precision: str, prompt_template: str, chat_template: str
    ) -> None:
        from training.ml.render import Renderer, stop_token_ids
        from training.ml.runtime import load_causal_lm, load_tokenizer

        self.tokenizer = load_tokenizer(path)
        self.renderer = Renderer.for_tokenizer(self.tokenizer, prompt_template, chat_template)
        self.model = load_causal_lm(path, trainable=False, precision=precision).to(device)
        self.stop_ids = stop_token_ids(self.tokenizer, self.model.generation_config)
        self.device = device

    def encode(self, prompts: list[Text], max_prompt_tokens: int) -> Iterator[torch.Tensor]:
        from training.ml.rollout import left_pad

        ids = [self.renderer.prompt_ids(p, max_prompt_tokens) for p in prompts]
        return (t.to(self.device) for t in left_pad(ids, self.tokenizer.pad_token_id))  # (B, P) x2

    def sample(
        self, query: torch.Tensor, mask: torch.Tensor, max_new_tokens: int, temperature: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from training.ml.rollout import sample

        pad = self.tokenizer.pad_token_id
        return sample(self.model, query, mask, max_new_tokens, temperature, pad, self.stop_ids)

    def decode(self, response: torch.Tensor, response_mask: torch.Tensor) -> list[str]:
        from training.ml.rollout import response_content

        return response_content(self.tokenizer, response, response_mask, self.stop_ids)[1]

    def logprobs(
        self,
        query: torch.Tensor,
        query_mask: torch.Tensor,
        response: torch.Tensor,
        response_mask: torch.Tensor,
        temperature: float,
    ) -> torch.Tensor:
        """Log-probability of each response token given its prompt and the tokens before. -> (B, R), 0 at padding"""
        import torch

        from training.ml.rollout import logprobs_of
        from training.ml.runtime import position_ids

        with torch.no_grad():
            ids = torch.cat([query, response], 1)  # (B, P + R)
            mask = torch.cat([query_mask, response_mask], 1)
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits
            start = query.shape[1] - 1
            logits = logits[:, start : start + response.shape[1]].float() / temperature  # (B, R, V)
            return logprobs_of(logits, response) * response_mask  # (B, R)

    def free(self) -> None:
        import torch

        del self.model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


RM_KEYS = (
    "rm_win_rate",
    "rm_win_rate_low",
    "rm_win_rate_high",
    "rm_score_policy",
    "rm_score_parent",
    "rm_heldout_accuracy",
)


def _rm_figures(
    reward_model_dir: str,
    renderer: Renderer,
    prompts: list[Text],
    policy: list[str],
    parent: list[str],
    device: torch.device,
    precision: str,
    seed: int,
) -> dict[str, Any]:
    """Score both models' responses with the reward model as it was trained (its own tokenizer and
    prompt rendering, bias included): win rate and mean scores."""
    import torch

    from training.ml.checkpoints import read_metrics
    from training.ml.ppo_models import RewardScorer
    from training.ml.progress import Reporter
    from training.ml.reward_model import score_pairs

    scorer = RewardScorer.from_folder(
        reward_model_dir, renderer, precision=precision, device=device, reporter=Reporter(echo=False)
    )
    assert scorer.renderer is not None  # a reward model folder always comes with its renderer
    policy_scores, parent_scores = (
        score_pairs(
            scorer.model, scorer.renderer, list(zip(prompts, responses, strict=True)), scorer.max_length
        )
        + scorer.bias
        for responses in (policy, parent)
    )  # (N,) each
    del scorer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    outcomes = [
        1.0 if a > b else 0.5 if a == b else 0.0
        for a, b in zip(policy_scores.tolist(), parent_scores.tolist(), strict=True)
    ]
    rate, low, high = win_rate_interval(outcomes, seed=seed)
    try:
        heldout = read_metrics(reward_model_dir).get("eval_accuracy")
    except (OSError, ValueError):
        heldout = None
    return dict(
        zip(
            RM_KEYS,
            (rate, low, high, float(policy_scores.mean()), float(parent_scores.mean()), heldout),
            strict=True,
        )
    )


def auto_evaluate(
    *,
    policy_dir: str,
    parent_dir: str,
    reward_model_dir: str | None,
    sft_dir: str | None,
    prompts_file: str,
    split: str = "valid",
    max_prompts: int = 64,
    max_new_tokens: int = 64,
    max_prompt_tokens: int = 256,
    temperature: float = 1.0,
    prompt_template: str = "{prompt}\n",
    chat_template: str = "auto",
    batch_size: int = 16,
    seed: int = 0,
) -> dict[str, Any]:
    """RM win rate of the policy over its parent, the RM's held-out accuracy and the KL to the SFT model
    (see the module docstring). prompts_file: a JSONL 'prompts' export whose rows carry "split".
    Without a reward model (a DPO round) or an SFT folder, the figures that need it are None."""
    import torch

    from training.ml.runtime import seed_everything

    prompts = _prompts(prompts_file, split, max_prompts)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    batches = [prompts[i : i + batch_size] for i in range(0, len(prompts), batch_size)]

    def sampler(path: str) -> _Sampler:
        return _Sampler(path, device, precision, prompt_template, chat_template)

    def samples_of(model: _Sampler, kl_against: _Sampler | None = None) -> tuple[list[str], list[float]]:
        """One response per prompt (seeded), and each one's KL estimate to the reference when asked.

        The estimate is the sum over the response's tokens of (r - 1) - log r with r = pi_ref / pi (Schulman's
        "k3"): unbiased for KL(pi || pi_ref) under pi's samples like log pi - log pi_ref, but never negative
        and of lower variance, so a policy that barely moved reads about 0, not a negative KL."""
        seed_everything(seed)
        responses, kls = [], []
        for part in batches:
            query, mask = model.encode(part, max_prompt_tokens)  # (B, P)
            response, response_mask = model.sample(query, mask, max_new_tokens, temperature)  # (B, R)
            responses += model.decode(response, response_mask)
            if kl_against is not None:
                own = model.logprobs(query, mask, response, response_mask, temperature)  # (B, R)
                ref = kl_against.logprobs(query, mask, response, response_mask, temperature)  # (B, R)
                log_ratio = ref - own  # log(pi_ref / pi), 0 at padding
                kls += ((log_ratio.exp() - 1 - log_ratio) * response_mask).sum(1).tolist()
        return responses, kls

    policy = sampler(policy_dir)
    sft = None
    if sft_dir:
        sft = policy if sft_dir == policy_dir else sampler(sft_dir)
        if sft.tokenizer.get_vocab() != policy.tokenizer.get_vocab():
            sft.free()
            sft = None  # KL needs one vocabulary; leave it out rather than compare unrelated tokens
    policy_responses, kls = samples_of(policy, sft)
    if sft is not None and sft is not policy:
        sft.free()
    figures: dict[str, Any] = dict.fromkeys(RM_KEYS)
    if reward_model_dir is None:
        policy.free()
    else:
        if parent_dir != policy_dir:
            policy.free()
            policy = sampler(parent_dir)
        parent_responses, _ = samples_of(policy)
        renderer = policy.renderer
        policy.free()  # one model in memory at a time: the reward model comes next
        figures = _rm_figures(
            reward_model_dir, renderer, prompts, policy_responses, parent_responses, device, precision, seed
        )
    return {
        "split": split,
        "prompts": len(prompts),
        **figures,
        "kl_to_sft": sum(kls) / len(kls) if kls else None,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "seed": seed,
    }
