"""The PPO update's arithmetic: log-probs without a full fp32 vocabulary tensor, the clipped losses
normalised so that any number of processes takes the same step, whitening over every rank.

Shapes: B episodes, P prompt tokens, R response tokens, V vocabulary, T ptx tokens.

Normalisation. A micro-batch's loss is its token sum divided by the tokens of the whole minibatch on
every rank (counted before the first micro-batch), times world x accumulation steps, which DDP's mean
and accelerate's division by the accumulation steps take back out. The step is then the token mean over
the minibatch, whatever the world size or the micro-batch split: TRL's GRPO calls this loss_type "dapo";
with one micro-batch on one process it is the masked mean the loop always used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from training.ml.rollout import Episodes
from training.ml.runtime import position_ids


def _chunk_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float) -> torch.Tensor:
    logits = logits.float() / temperature  # (B, C, V) fp32 for this chunk only
    return logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, -1)


def token_logprobs(
    logits: torch.Tensor, tokens: torch.Tensor, temperature: float, chunk: int
) -> torch.Tensor:
    """log softmax(logits / T)[token], chunk positions at a time: (B, R, V), (B, R) -> (B, R) fp32.

    Under autograd each chunk is recomputed in the backward (torch.utils.checkpoint), so only the
    model's own (bf16 under autocast) logits are kept: never an fp32 (B, R, V) copy, nor its softmax."""
    parts = []
    for lo in range(0, tokens.shape[1], chunk):
        args = (logits[:, lo : lo + chunk], tokens[:, lo : lo + chunk], temperature)
        if torch.is_grad_enabled() and logits.requires_grad:
            parts.append(checkpoint(_chunk_logprobs, *args, use_reentrant=False))
        else:
            parts.append(_chunk_logprobs(*args))
    return torch.cat(parts, 1) if parts else logits.new_zeros(tokens.shape, dtype=torch.float)


@torch.no_grad()
def token_entropy(logits: torch.Tensor, temperature: float, chunk: int) -> torch.Tensor:
    """Entropy of softmax(logits / T) at each position, chunk by chunk, no graph. (B, R, V) -> (B, R)"""
    parts = []
    for lo in range(0, logits.shape[1], chunk):
        logp = F.log_softmax(logits[:, lo : lo + chunk].float() / temperature, -1)
        parts.append(-(logp.exp() * logp).sum(-1))
    return torch.cat(parts, 1) if parts else logits.new_zeros(logits.shape[:2], dtype=torch.float)


@torch.no_grad()
def response_logprobs(model: torch.nn.Module, ep: Episodes, temperature: float, chunk: int) -> torch.Tensor:
    """Log-probs of the sampled response tokens under a model, with logits only at the R positions
    that predict them (logits_to_keep). -> (B, R)"""
    ids, mask = ep.full
    width = ep.response.shape[1]
    logits = model(
        input_ids=ids, attention_mask=mask, position_ids=position_ids(mask), logits_to_keep=width + 1
    ).logits[:, :width]  # (B, R, V)
    return token_logprobs(logits, ep.response, temperature, chunk)


def whiten_over_ranks(x: torch.Tensor, mask: torch.Tensor, accelerator: Any) -> torch.Tensor:
    """rollout.whiten with the mean and variance of every rank's tokens, so the advantages of a
    2-process run are those of one process holding the whole batch."""
    total = accelerator.reduce(torch.stack([(x * mask).sum(), mask.sum()]).double(), reduction="sum")
    mean = (total[0] / total[1].clamp(min=1)).to(x.dtype)
    square = accelerator.reduce((((x - mean) ** 2) * mask).sum().double(), reduction="sum")
    var = (square / total[1].clamp(min=1)).to(x.dtype)
    return (x - mean) * torch.rsqrt(var + 1e-8) * mask


@dataclass
class Terms:
    """One micro-batch's share of the minibatch's token means (sums over its tokens / the minibatch's)."""

    policy: torch.Tensor
    value: torch.Tensor
    ptx: torch.Tensor | None
    stats: dict[str, float]


def ppo_terms(
    logits: torch.Tensor,
    values: torch.Tensor,
    mb: Episodes,
    tokens: float,
    *,
    temperature: float,
    cliprange: float,
    cliprange_value: float,
    chunk: int,
) -> Terms:
    """The clipped policy loss and the clipped value loss of InstructGPT's PPO (as TRL's last PPOTrainer
    and OpenRLHF write them), each a sum over this micro-batch's response tokens / `tokens`."""
    mask = mb.response_mask.float()
    logprobs = token_logprobs(logits, mb.response, temperature, chunk)  # (b, R)
    log_ratio = (logprobs - mb.logprobs) * mask
    ratio = torch.exp(log_ratio)
    assert mb.advantages is not None and mb.returns is not None  # the rollout's GAE set them
    pg1 = -mb.advantages * ratio
    pg2 = -mb.advantages * torch.clamp(ratio, 1 - cliprange, 1 + cliprange)
    policy = (torch.max(pg1, pg2) * mask).sum() / tokens
    vclipped = mb.values + torch.clamp(values - mb.values, -cliprange_value, cliprange_value)
    value = 0.5 * (torch.max((values - mb.returns) ** 2, (vclipped - mb.returns) ** 2) * mask).sum() / tokens
    with torch.no_grad():
        stats = {
            "policy_loss": policy.item(),
            "value_loss": value.item(),
            "clip_frac": ((pg2 > pg1).float() * mask).sum().item() / tokens,
            "approx_kl": (0.5 * log_ratio**2 * mask).sum().item() / tokens,
            "entropy": (token_entropy(logits.detach(), temperature, chunk) * mask).sum().item() / tokens,
        }
    return Terms(policy, value, None, stats)


def ptx_term(
    logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, tokens: float, chunk: int
) -> torch.Tensor:
    """PPO-ptx: the negative log-likelihood of the ptx tokens (each predicted by the one before),
    summed and divided by the minibatch's ptx tokens. logits (b, T - 1, V), ids/mask (b, T) -> ()"""
    targets, keep = ids[:, 1:], mask[:, 1:].float()
    return -(token_logprobs(logits, targets, 1.0, chunk) * keep).sum() / tokens


def ptx_tokens(sequences: list[list[int]]) -> int:
    """Tokens the ptx term predicts in these sequences (all but each one's first)."""
    return sum(max(len(s) - 1, 0) for s in sequences)


def gradient_norm(term: torch.Tensor, parameters: list[torch.nn.Parameter]) -> float:
    """The norm of the gradient one loss term alone gives these (this rank's) parameters, without
    touching .grad (torch.autograd.grad: DDP's hooks do not fire). The graph is kept for the backward."""
    grads = torch.autograd.grad(term, parameters, retain_graph=True, allow_unused=True)
    squares = [g.detach().float().pow(2).sum() for g in grads if g is not None]
    return torch.stack(squares).sum().sqrt().item() if squares else 0.0


def minibatch_tokens(
    accelerator: Any, ep: Episodes, micros: list[torch.Tensor], ptx: list[list[list[int]]]
) -> tuple[float, float]:
    """Response tokens and ptx tokens of one minibatch over every rank: the losses' denominators."""
    local = torch.tensor(
        [
            float(sum(ep.response_mask[m].sum().item() for m in micros)),
            float(sum(ptx_tokens(b) for b in ptx)),
        ],
        device=accelerator.device,
    )
    total = accelerator.reduce(local, reduction="sum")
    return max(total[0].item(), 1.0), max(total[1].item(), 1.0)


def policy_gradient_norms(terms: Terms, policy: torch.nn.Module, ptx_coef: float) -> dict[str, float]:
    """pg/grad_norm and ptx/grad_ratio (ptx.py): the gradient PPO's term and ptx's term each give the
    policy, measured apart on one micro-batch. Only where this rank holds whole parameters (no FSDP,
    no DeepSpeed)."""
    parameters = [p for p in policy.parameters() if p.requires_grad]
    norms = {"pg/grad_norm": gradient_norm(terms.policy, parameters)}
    if terms.ptx is not None:
        norms["ptx/grad_norm"] = gradient_norm(ptx_coef * terms.ptx, parameters)
        norms["ptx/grad_ratio"] = norms["ptx/grad_norm"] / max(norms["pg/grad_norm"], 1e-12)
    return norms
