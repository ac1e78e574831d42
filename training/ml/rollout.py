"""PPO rollouts: sample responses, per-token log-probs and values, KL-shaped rewards, GAE advantages.

Shapes: B episodes, P prompt tokens (left-padded), R response tokens (right-padded), V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from training.ml.runtime import position_ids


@dataclass
class Episodes:
    """A batch of (prompt, response) episodes and everything PPO needs about them."""

    query: torch.Tensor  # (B, P) left-padded prompt ids
    query_mask: torch.Tensor  # (B, P)
    response: torch.Tensor  # (B, R) sampled ids, pad after the end
    response_mask: torch.Tensor  # (B, R) 1 up to and including the first EOS
    logprobs: torch.Tensor  # (B, R) under the policy that sampled them
    ref_logprobs: torch.Tensor  # (B, R) under the frozen reference
    values: torch.Tensor  # (B, R) V(s_t) before each response token
    scores: torch.Tensor  # (B,) reward model score of the whole response
    rewards: torch.Tensor | None = None  # (B, R) -beta * KL_t, plus the score at the last token
    advantages: torch.Tensor | None = None  # (B, R) whitened GAE
    returns: torch.Tensor | None = None  # (B, R)

    def select(self, index: torch.Tensor) -> Episodes:
        return Episodes(
            **{
                f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
                for f in fields(self)
            }
        )

    @property
    def full(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt + response ids and attention mask. -> (B, P + R) each"""
        return torch.cat([self.query, self.response], 1), torch.cat([self.query_mask, self.response_mask], 1)


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ids (B, P), mask (B, P)"""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids, mask


def response_mask(response: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 for tokens up to and including the first EOS. (B, R) -> (B, R)"""
    is_eos = (response == eos_id).long()
    before_first_eos = (is_eos.cumsum(1) - is_eos) == 0
    return before_first_eos.long()


@torch.no_grad()
def sample(
    model,
    query: torch.Tensor,
    query_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    pad_id: int,
    eos_id: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample one response per prompt at the given temperature (no top-k/top-p). -> response, mask (B, R)"""
    from transformers import GenerationConfig

    config = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=1.0,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad_id,
        eos_token_id=eos_id,
    )
    out = model.generate(input_ids=query, attention_mask=query_mask, generation_config=config)  # (B, P + R)
    response = out[:, query.shape[1] :]
    mask = response_mask(response, eos_id)
    return response.masked_fill(mask == 0, pad_id), mask


def response_logits(model, ep: Episodes, temperature: float) -> torch.Tensor:
    """Logits that predicted each response token. -> (B, R, V)"""
    ids, mask = ep.full
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits  # (B, P+R, V)
    start = ep.query.shape[1] - 1
    return logits[:, start : start + ep.response.shape[1]].float() / temperature


def logprobs_of(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B, R, V), (B, R) -> (B, R)"""
    return torch.gather(F.log_softmax(logits, -1), 2, tokens.unsqueeze(-1)).squeeze(-1)


def entropy_of(logits: torch.Tensor) -> torch.Tensor:
    """(B, R, V) -> (B, R)"""
    logp = F.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


def response_values(value_model, ep: Episodes) -> torch.Tensor:
    """V(s_t) read at the position that predicts response token t. -> (B, R)"""
    ids, mask = ep.full
    start = ep.query.shape[1] - 1
    return value_model(ids, mask)[:, start : start + ep.response.shape[1]]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return (out if shift_mean else out + mean) * mask


def kl_rewards(ep: Episodes, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token reward -beta * (logp - logp_ref), with the score added at the last response token.

    -> rewards (B, R), per-token KL (B, R)
    """
    mask = ep.response_mask.float()
    kl = (ep.logprobs - ep.ref_logprobs) * mask  # (B, R)
    rewards = -beta * kl
    last = (ep.response_mask.sum(1) - 1).clamp(min=0)  # (B,)
    rewards[torch.arange(len(last), device=last.device), last] += ep.scores
    return rewards * mask, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens. (B, R) x3 -> advantages, returns (B, R)"""
    mask = mask.float()
    values = values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask
