"""PPO rollouts: sample responses, per-token log-probs and values, KL-shaped rewards, GAE advantages.

Shapes: B episodes, P prompt tokens (left-padded), R response tokens (right-padded), V vocabulary.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

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
        selected: dict[str, Any] = {
            f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
            for f in fields(self)
        }
        return Episodes(**selected)

    @classmethod
    def concat(cls, parts: list[Episodes], pad_id: int) -> Episodes:
        """Chunks sampled apart (each padded to its own longest prompt and response) as one batch:
        prompts left-padded, responses right-padded to the longest of all."""
        prompt_width = max(p.query.shape[1] for p in parts)
        width = max(p.response.shape[1] for p in parts)

        def joined(name: str) -> torch.Tensor:
            tensors = []
            for part in parts:
                tensor = getattr(part, name)
                if name in ("query", "query_mask"):
                    fill = pad_id if name == "query" else 0
                    tensor = F.pad(tensor, (prompt_width - tensor.shape[1], 0), value=fill)
                elif tensor.dim() == 2:
                    fill = pad_id if name == "response" else 0
                    tensor = F.pad(tensor, (0, width - tensor.shape[1]), value=fill)
                tensors.append(tensor)
            return torch.cat(tensors)

        names = [f.name for f in fields(cls) if getattr(parts[0], f.name) is not None]
        return cls(**{name: joined(name) for name in names})

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


def is_stop(response: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """Where a stop token stands. (B, R) -> (B, R) bool"""
    return torch.isin(response, torch.tensor(stop_ids, device=response.device))


def response_mask(response: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """1 for tokens up to and including the first stop token. (B, R) -> (B, R)"""
    stops = is_stop(response, stop_ids).long()
    before_first_stop = (stops.cumsum(1) - stops) == 0
    return before_first_stop.long()


def response_content(
    tokenizer: Any, response: torch.Tensor, mask: torch.Tensor, stop_ids: list[int]
) -> tuple[torch.Tensor, list[str]]:
    """A response without its stop token: its mask (B, R), and its text (what a reward model or a
    labeler reads)."""
    content = mask * ~is_stop(response, stop_ids)
    texts = tokenizer.batch_decode(
        response.masked_fill(content == 0, tokenizer.pad_token_id), skip_special_tokens=True
    )
    return content, texts


@contextmanager
def plain_generation_config(model):
    """generate() fills every field our GenerationConfig leaves unset from the checkpoint's
    generation_config (repetition_penalty, no_repeat_ngram_size, top_k, min_p, ...), so a rollout would
    be drawn from something other than softmax(logits / T), while the PPO ratio and KL assume exactly
    that. During the call the model's own generation_config is a blank one."""
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


@torch.no_grad()
def sample(
    model: Any,
    query: torch.Tensor,
    query_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    pad_id: int,
    stop_ids: list[int],
    top_p: float = 1.0,
    num_return_sequences: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample from softmax(logits / temperature) (and top_p when < 1), nothing else: no processor of
    the checkpoint's generation_config applies. -> response, mask (B * num_return_sequences, R)"""
    from transformers import GenerationConfig

    config = GenerationConfig(
        do_sample=True,
        temperature=temperature,
        top_k=0,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        num_return_sequences=num_return_sequences,
        pad_token_id=pad_id,
        eos_token_id=list(stop_ids),
    )
    with plain_generation_config(model):
        out = model.generate(input_ids=query, attention_mask=query_mask, generation_config=config)  # (B, P+R)
    response = out[:, query.shape[1] :]
    mask = response_mask(response, stop_ids)
    return response.masked_fill(mask == 0, pad_id), mask


def response_logits(model: Any, ep: Episodes, temperature: float) -> torch.Tensor:
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


def response_values(value_model: torch.nn.Module, ep: Episodes) -> torch.Tensor:
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
