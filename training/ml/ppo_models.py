"""The four models of PPO: policy, frozen reference, value (per-token head), frozen reward; plus the KL
controller and the policy weight EMA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from training.ml.errors import CheckpointError
from training.ml.reward_model import reward_bias, sequence_scores
from training.ml.runtime import position_ids

RewardFn = Callable[[list[str], list[str]], list[float]]


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


class ValueModel(nn.Module):
    """A sequence-classification model read at every position: V(s_t) for each token. (B, T) -> (B, T)"""

    def __init__(self, scalar_model: nn.Module) -> None:
        super().__init__()
        head = getattr(scalar_model, "score", None)
        if not isinstance(head, nn.Module):
            raise CheckpointError(
                f"{type(scalar_model).__name__} has no 'score' head; the value model must be a "
                "*ForSequenceClassification model (most causal LMs have one)"
            )
        self.scalar_model = scalar_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        backbone = self.scalar_model.base_model
        hidden = backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask)
        ).last_hidden_state  # (B, T, H)
        return self.scalar_model.score(hidden).squeeze(-1).float()  # (B, T)


class RewardScorer:
    """Scores (prompt, response) episodes with a frozen reward model folder or a Python callable."""

    def __init__(
        self,
        model: nn.Module | None = None,
        tokenizer: Any = None,
        fn: RewardFn | None = None,
        same_tokenizer: bool = True,
        max_length: int = 1024,
    ) -> None:
        if (model is None) == (fn is None):
            raise CheckpointError("ppo needs exactly one reward: a reward_model folder or a Python reward_fn")
        self.model, self.tokenizer, self.fn = model, tokenizer, fn
        self.same_tokenizer, self.max_length = same_tokenizer, max_length
        self.bias = reward_bias(model) if model is not None else 0.0

    @torch.no_grad()
    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, prompts: list[str], responses: list[str]
    ) -> torch.Tensor:
        """ids, mask: (B, T) prompt + response with EOS and padding masked out. -> (B,) on ids.device"""
        if self.fn is not None:
            return torch.tensor([float(s) for s in self.fn(prompts, responses)], device=ids.device)
        if self.same_tokenizer:
            pad = self.tokenizer.pad_token_id
            clean = ids.masked_fill(mask == 0, pad)
            return sequence_scores(self.model, clean, mask) + self.bias
        from training.ml.reward_model import score_texts

        texts = [p + r for p, r in zip(prompts, responses, strict=True)]
        return (score_texts(self.model, self.tokenizer, texts, self.max_length) + self.bias).to(ids.device)


class KLController:
    """Fixed beta, or the adaptive controller of Ziegler et al. (2019) when adaptive=True."""

    def __init__(self, value: float, adaptive: bool, target: float, horizon: int) -> None:
        self.value, self.adaptive, self.target, self.horizon = value, adaptive, target, horizon

    def update(self, kl: float, episodes: int) -> None:
        if not self.adaptive:
            return
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * episodes / self.horizon


class WeightEMA:
    """Exponential moving average of the policy weights (paper: 0.992); the EMA is what gets saved."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {name: p.detach().clone() for name, p in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for name, p in model.state_dict().items():
            if p.dtype.is_floating_point:
                self.shadow[name].lerp_(p.detach(), 1.0 - self.decay)
            else:
                self.shadow[name].copy_(p)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, tensor in state.items():
            self.shadow[name].copy_(tensor)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)
