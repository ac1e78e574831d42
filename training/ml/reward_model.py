"""Using a trained reward model: batch texts, read the score at the last real token, add the bias.

The bias (set after training so that demonstrations score 0 on average) lives in the checkpoint's
config.json as `reward_bias` and in training_config.json.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from training.ml.data import format_prompt, ranking_pairs


def pad_right(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask. -> (N, T), (N, T)"""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def encode(tokenizer: Any, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize, keep the last max_length tokens (the end of the completion is where the score is read)."""
    ids = tokenizer(texts, add_special_tokens=True)["input_ids"]
    return pad_right([seq[-max_length:] or [tokenizer.pad_token_id] for seq in ids], tokenizer.pad_token_id)


def sequence_scores(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Scalar score of each sequence, read by the model at its last non-pad token. (N, T) -> (N,)"""
    return model(input_ids=input_ids, attention_mask=attention_mask).logits[:, 0].float()


def reward_bias(model: Any) -> float:
    return float(getattr(model.config, "reward_bias", 0.0) or 0.0)


@torch.no_grad()
def score_texts(
    model: Any, tokenizer: Any, texts: list[str], max_length: int = 512, batch_size: int = 16
) -> torch.Tensor:
    """Raw scores (no bias) of full texts. -> (N,) on the CPU"""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(texts), batch_size):
        ids, mask = encode(tokenizer, texts[start : start + batch_size], max_length)
        out.append(sequence_scores(model, ids.to(device), mask.to(device)).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def evaluate_rankings(
    model: Any,
    tokenizer: Any,
    rankings: list[dict[str, Any]],
    template: str,
    max_length: int = 512,
    batch_size: int = 16,
) -> dict[str, float]:
    """Held-out pairwise accuracy (score ties count half) and log loss over every non-tied pair."""
    texts, pairs = [], []
    for ranking in rankings:
        prompt = format_prompt(template, ranking["prompt"])
        offset = len(texts)
        position = {c: offset + k for k, c in enumerate(ranking["completions"])}
        texts += [prompt + c for c in ranking["completions"]]
        pairs += [(position[w], position[lo]) for w, lo in ranking_pairs(ranking)]
    if not pairs:
        return {"accuracy": math.nan, "log_loss": math.nan, "pairs": 0}
    scores = score_texts(model, tokenizer, texts, max_length, batch_size)
    winners, losers = torch.tensor(pairs).T
    margin = scores[winners] - scores[losers]  # (P,)
    accuracy = ((margin > 0).float() + 0.5 * (margin == 0).float()).mean().item()
    return {"accuracy": accuracy, "log_loss": (-F.logsigmoid(margin)).mean().item(), "pairs": len(pairs)}
