"""The four models of PPO: policy, frozen reference, value (per-token head), frozen reward; the module
that joins policy and value for accelerate; the KL controller and the policy weight EMA."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from training.ml.checkpoints import read_config
from training.ml.errors import CheckpointError, ConfigError
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
        # (1,), not a scalar: FSDP2's fully_shard refuses 0-dimensional parameters.
        self.bias = nn.Parameter(torch.tensor([float(bias)]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        backbone = self.scalar_model.base_model
        hidden = backbone(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask)
        ).last_hidden_state  # (B, T, H)
        return self.scalar_model.score(hidden).squeeze(-1).float() + self.bias  # (B, T)


def value_model_for(cfg: Any, tokenizer: Any, scorer: RewardScorer, reporter: Reporter) -> ValueModel:
    """From value_model if given (it must share the policy's vocabulary: it reads the policy's ids),
    else the reward model with its bias when it shares the vocabulary, else the policy with a new head."""
    vocab = tokenizer.get_vocab()
    if cfg.value_model:
        if load_tokenizer(cfg.value_model).get_vocab() != vocab:
            raise ConfigError(
                f"value_model {cfg.value_model!r} has another tokenizer than the policy; the value "
                "model reads the policy's token ids: leave value_model empty to start it from the policy"
            )
        init, bias = cfg.value_model, 0.0
    elif scorer.model is not None and scorer.tokenizer.get_vocab() == vocab:
        init, bias = cfg.reward_model, reward_bias(scorer.model)
    else:
        if cfg.reward_model:
            reporter.log(
                "note: the reward model has another tokenizer; the value model starts from the policy"
            )
        init, bias = cfg.model, 0.0
    return ValueModel(load_scalar_model(init, tokenizer.pad_token_id, trainable=True), bias)


class PolicyAndValue(nn.Module):
    """Policy and value as one module, so accelerate prepares one model with one optimizer: what
    DeepSpeed needs (one engine per Accelerator), and one forward and one backward per micro-batch for
    DDP and FSDP (PPO's and ptx's gradients are all-reduced once, with the value's).

    As TRL's PolicyAndValueWrapper (its PPOTrainer up to 0.x), with three differences: the forward also
    runs the ptx sequences (InstructGPT's PPO-ptx in the same backward); it returns logits only at the
    response positions (`logits_to_keep`), never over the prompt; and the value can be a head on the
    policy's last hidden state (`shared_trunk`) instead of a second model, one trunk fewer in memory
    when it is short, as TRL's AutoModelForCausalLMWithValueHead (its value then shapes the policy too)."""

    def __init__(self, policy: Any, value: ValueModel | None) -> None:
        super().__init__()
        self.policy: Any = policy
        self.value = value
        self.value_head = None if value is not None else nn.Linear(policy.config.hidden_size, 1)
        if self.value_head is not None:  # a new critic predicts 0 until the returns teach it
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)

    def value_parameters(self) -> list[nn.Parameter]:
        module = self.value if self.value is not None else self.value_head
        assert module is not None
        return [p for p in module.parameters() if p.requires_grad]

    def forward(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        width: int,
        ptx_ids: torch.Tensor | None = None,
        ptx_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """ids, mask: (B, P + R) prompt and response, width = R.
        -> response logits (B, R, V) in the model's dtype, values (B, R), ptx logits (b, T - 1, V) or None"""
        start = ids.shape[1] - width - 1  # the position that predicts the first response token
        out = self.policy(
            input_ids=ids,
            attention_mask=mask,
            position_ids=position_ids(mask),
            logits_to_keep=width + 1,
            output_hidden_states=self.value is None,
        )
        logits = out.logits[:, :width]  # (B, R, V)
        if self.value is not None:
            values = self.value(ids, mask)[:, start : start + width]  # (B, R)
        else:
            assert self.value_head is not None
            hidden = out.hidden_states[-1][:, start : start + width]  # (B, R, H)
            values = self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()
        ptx_logits = None
        if ptx_ids is not None and ptx_mask is not None:
            ptx_logits = self.policy(
                input_ids=ptx_ids, attention_mask=ptx_mask, position_ids=position_ids(ptx_mask)
            ).logits[:, :-1]  # (b, T - 1, V): each position predicts the next token
        return logits, values, ptx_logits

    # accelerate and TRL's unwrap_model_for_generation ask a prepared model about checkpointing.
    @property
    def is_gradient_checkpointing(self) -> bool:
        return bool(getattr(self.policy, "is_activation_checkpointing", False))

    # The names accelerate and TRL call; the models' own are transformers 5's activation_checkpointing_*
    # (gradient_checkpointing_* are deprecated aliases there, removed in v6).
    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        kwargs = gradient_checkpointing_kwargs or {"use_reentrant": False}
        self.policy.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        if self.value is not None:
            self.value.scalar_model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)

    def gradient_checkpointing_disable(self) -> None:
        self.policy.activation_checkpointing_disable()
        if self.value is not None:
            self.value.scalar_model.activation_checkpointing_disable()


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

    The shadow is fp32 and holds what this rank holds of each weight: the whole weight under DDP, its
    local shard under FSDP2 (a DTensor's local tensor) or ZeRO-3 (ds_tensor). So the EMA costs one fp32
    copy of this rank's shard, is updated without any collective, and is gathered only to save
    (`swapped_in` puts it into the shards while accelerate gathers the state dict). It follows a weight
    that moves to another device instead of staying where it was made."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {
            name: local_shard(p).detach().float().clone()
            for name, p in model.named_parameters()
            if p.dtype.is_floating_point
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for name, p in model.named_parameters():
            if name not in self.shadow:
                continue
            local, shadow = local_shard(p), self.shadow[name]
            if shadow.device != local.device:
                shadow = self.shadow[name] = shadow.to(local.device)
            shadow.lerp_(local.detach().float(), 1.0 - self.decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, tensor in state.items():
            self.shadow[name].copy_(tensor)

    @contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[None]:
        """The EMA in place of the weights (this rank's shards), the trained weights back afterwards."""
        saved = {}
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in self.shadow:
                    local = local_shard(p)
                    saved[name] = local.detach().clone()
                    local.copy_(self.shadow[name].to(local.device, local.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name in saved:
                        local_shard(p).copy_(saved[name])


def local_shard(p: torch.Tensor) -> torch.Tensor:
    """What this rank holds of a parameter: a ZeRO-3 partition, a DTensor's (FSDP2) local tensor, or
    the parameter itself."""
    if hasattr(p, "ds_tensor"):
        return p.ds_tensor
    to_local = getattr(p, "to_local", None)
    return to_local() if callable(to_local) else p
