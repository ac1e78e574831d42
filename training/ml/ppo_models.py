"""The four models of PPO: policy, frozen reference, value (per-token head), frozen reward; plus the KL
controller and the policy weight EMA."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from training.ml.checkpoints import read_config
from training.ml.errors import CheckpointError
from training.ml.progress import Reporter
from training.ml.render import Renderer, Text
from training.ml.reward_model import reward_bias, score_pairs, sequence_scores
from training.ml.runtime import load_scalar_model, load_tokenizer, position_ids, position_limit

RewardFn = Callable[[list[Any], list[str]], list[float]]


class ValueModel(nn.Module):
    """A sequence-classification model read at every position: V(s_t) for each token. (B, T) -> (B, T)

    Initialised from the reward model (InstructGPT), its head has no bias term of its own: the reward
    model's bias (which centres demonstrations on 0) is a learnable offset here, so the value model
    starts out predicting what the reward model scores."""

    def __init__(self, scalar_model: nn.Module, bias: float = 0.0) -> None:
        super().__init__()  # runtime.load_scalar_model has made sure the model has a 'score' head
        # Any: a transformers model, whose base_model and score torch types only as Tensor | Module.
        self.scalar_model: Any = scalar_model
        self.bias = nn.Parameter(torch.tensor(float(bias)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        backbone = self.scalar_model.base_model
        hidden = backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask)
        ).last_hidden_state  # (B, T, H)
        return self.scalar_model.score(hidden).squeeze(-1).float() + self.bias  # (B, T)


class RewardScorer:
    """Scores (prompt, response) episodes with a frozen reward model folder or a Python callable.

    The reward model reads exactly what it was trained on: its own tokenizer and the prompt rendering
    saved in its training_config.json. When that matches the policy's (same vocabulary, same template),
    it reads the policy's ids as they are; otherwise each response is decoded and rendered again."""

    def __init__(
        self,
        fn: RewardFn | None = None,
        model: nn.Module | None = None,
        renderer: Renderer | None = None,
        reuse_ids: bool = False,
        max_length: int = 1024,
    ) -> None:
        if (model is None) == (fn is None):
            raise CheckpointError("ppo needs exactly one reward: a reward_model folder or a Python reward_fn")
        self.fn, self.model, self.renderer = fn, model, renderer
        self.reuse_ids, self.max_length = reuse_ids, max_length
        self.bias = reward_bias(model) if model is not None else 0.0

    @classmethod
    def from_folder(
        cls,
        path: str,
        policy: Renderer,
        *,
        precision: str,
        device: torch.device,
        reporter: Reporter,
    ) -> RewardScorer:
        tokenizer = load_tokenizer(path)
        trained = read_config(path)
        template = trained.get("prompt_template", policy.prompt_template)
        chat = trained.get("chat_template", "auto" if policy.chat else "none")
        renderer = Renderer.for_tokenizer(tokenizer, template, chat)
        if not trained:
            reporter.log(f"note: {path} has no training_config.json; it scores with {renderer.describe()}")
        reuse = renderer.same_as(policy)
        if not reuse:
            reporter.log(
                f"warning: the reward model renders prompts with {renderer.describe()} "
                f"(its own tokenizer and training config), the policy with {policy.describe()}: each "
                "response is decoded and scored as the reward model was trained"
            )
        model = load_scalar_model(path, tokenizer.pad_token_id, trainable=False, precision=precision)
        return cls(
            model=model.to(device),
            renderer=renderer,
            reuse_ids=reuse,
            max_length=position_limit(path) or 1024,
        )

    @property
    def tokenizer(self) -> Any:
        return self.renderer.tokenizer if self.renderer is not None else None

    @torch.no_grad()
    def __call__(
        self, ids: torch.Tensor, mask: torch.Tensor, prompts: list[Text], responses: list[str]
    ) -> torch.Tensor:
        """ids, mask: (B, T) the policy's prompt + response ids, the stop token and padding masked out.
        prompts: the rows' prompts; responses: the decoded responses. -> (B,) on ids.device"""
        if self.fn is not None:
            return torch.tensor([float(s) for s in self.fn(prompts, responses)], device=ids.device)
        assert self.renderer is not None  # from_folder sets it whenever there is no fn
        if self.reuse_ids and ids.shape[1] <= self.max_length:
            clean = ids.masked_fill(mask == 0, self.renderer.tokenizer.pad_token_id)
            return sequence_scores(self.model, clean, mask) + self.bias
        pairs = list(zip(prompts, responses, strict=True))
        scores = score_pairs(self.model, self.renderer, pairs, self.max_length, batch_size=len(pairs))
        return (scores + self.bias).to(ids.device)


class KLController:
    """Fixed beta, or the adaptive controller of Ziegler et al. (2019) when adaptive=True."""

    def __init__(self, value: float, adaptive: bool, target: float, horizon: int) -> None:
        self.value, self.adaptive, self.target, self.horizon = value, adaptive, target, horizon

    def update(self, kl: float, episodes: int) -> None:
        """kl: the mean KL per episode over every rank (the same on each, so beta stays the same)."""
        if not self.adaptive:
            return
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * episodes / self.horizon


class WeightEMA:
    """Exponential moving average of the policy weights (paper: 0.992); the EMA is what gets saved.

    The shadow is fp32 and lives where each weight lives (the GPU once the policy is prepared): it
    follows a weight that moves, instead of staying on the device it was made on."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {
            name: (p.detach().float() if p.dtype.is_floating_point else p.detach()).clone()
            for name, p in model.state_dict().items()
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for name, p in model.state_dict().items():
            shadow = self.shadow[name]
            if shadow.device != p.device:
                shadow = self.shadow[name] = shadow.to(p.device)
            if p.dtype.is_floating_point:
                shadow.lerp_(p.detach().float(), 1.0 - self.decay)
            else:
                shadow.copy_(p)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, tensor in state.items():
            self.shadow[name].copy_(tensor)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)
