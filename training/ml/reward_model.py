"""Using a reward model: read the score at the last real token, add the bias, evaluate on rankings.

The score is pooled here, explicitly, at the last token the attention mask keeps, with position ids
that ignore left padding (as TRL's get_reward does): the library's own pooling looks for the last
token that is not the pad id, which is wrong when pad == eos or the row is left-padded (before
transformers PR #35911), and it passes no position ids, so a model with absolute positions scores a
left-padded row at the wrong positions.

The bias (set after training so that demonstrations score 0 on average) lives in the checkpoint's
config.json as `reward_bias` and in training_config.json.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from training.ml.render import Renderer, Text
from training.ml.runtime import position_ids


def pad_right(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask. -> (N, T), (N, T)"""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last position the mask keeps, for left or right padding. (N, T) -> (N,)"""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * (attention_mask != 0)).argmax(-1)


def sequence_scores(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Scalar score of each sequence at its last real token. (N, T) -> (N,) float32

    The forward goes through `model` itself (which may be wrapped by DDP), and the head is applied to
    the last hidden state at the pooled position."""
    inner = getattr(model, "module", model)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids(attention_mask),
        output_hidden_states=True,
    )
    hidden = out.hidden_states[-1]  # (N, T, H)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    pooled = hidden[rows, last_token_index(attention_mask)]  # (N, H)
    return inner.score(pooled).squeeze(-1).float()


def reward_bias(model: Any) -> float:
    return float(getattr(model.config, "reward_bias", 0.0) or 0.0)


@torch.no_grad()
def score_ids(model: Any, sequences: list[list[int]], pad_id: int, batch_size: int = 16) -> torch.Tensor:
    """Raw scores (no bias) of token id sequences. -> (N,) on the CPU"""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(sequences), batch_size):
        ids, mask = pad_right(sequences[start : start + batch_size], pad_id)
        out.append(sequence_scores(model, ids.to(device), mask.to(device)).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def score_pairs(
    model: Any,
    renderer: Renderer,
    pairs: Sequence[tuple[Text, Text]],
    max_length: int = 512,
    batch_size: int = 16,
) -> torch.Tensor:
    """Raw scores (no bias) of (prompt, completion) pairs, rendered as the reward model was trained."""
    sequences = [renderer.scored_ids(prompt, completion, max_length) for prompt, completion in pairs]
    return score_ids(model, sequences, renderer.tokenizer.pad_token_id, batch_size)


def pairwise_accuracy(margin: torch.Tensor) -> torch.Tensor:
    """Share of pairs whose better completion scores higher; an exact score tie counts half (train and
    eval count it the same way)."""
    return ((margin > 0).float() + 0.5 * (margin == 0).float()).mean()


def ranking_items(rankings: list[dict[str, Any]]) -> tuple[list[tuple[Text, Text]], list[tuple[int, int]]]:
    """Every (prompt, completion) of the rankings, and each (better, worse) pair as indices into them."""
    items: list[tuple[Text, Text]] = []
    pairs: list[tuple[int, int]] = []
    for ranking in rankings:
        offset = len(items)
        items += [(ranking["prompt"], c) for c in ranking["completions"]]
        pairs += [(offset + w, offset + lo) for w, lo in ranking["pairs"]]
    return items, pairs


def ranking_metrics(scores: torch.Tensor, pairs: list[tuple[int, int]]) -> dict[str, float]:
    """Pairwise accuracy and log loss over the pairs, from the score of every item. scores: (N,)"""
    if not pairs:
        return {"accuracy": math.nan, "log_loss": math.nan, "pairs": 0}
    winners, losers = torch.tensor(pairs).T
    margin = scores[winners] - scores[losers]  # (P,)
    return {
        "accuracy": pairwise_accuracy(margin).item(),
        "log_loss": (-F.logsigmoid(margin)).mean().item(),
        "pairs": len(pairs),
    }


def evaluate_rankings(
    model: Any,
    renderer: Renderer,
    rankings: list[dict[str, Any]],
    max_length: int = 512,
    batch_size: int = 16,
) -> dict[str, float]:
    """Held-out pairwise accuracy and log loss over every (better, worse) pair of the rankings, in one
    process (the rm stage scores its shards on every rank: training.ml.shards)."""
    items, pairs = ranking_items(rankings)
    if not pairs:
        return ranking_metrics(torch.zeros(0), pairs)
    return ranking_metrics(score_pairs(model, renderer, items, max_length, batch_size), pairs)
