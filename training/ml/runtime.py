"""Where a stage runs: seeds, device, precision, and the Trainer arguments every Trainer-based stage shares."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from training.ml.config import TrainConfig
from training.ml.errors import CheckpointError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_precision(name: str) -> str:
    """'auto' -> 'bf16' on a CUDA GPU that supports it, else 'no'."""
    if name != "auto":
        return name
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def trainer_arguments(cfg: TrainConfig, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for transformers.TrainingArguments or a TRL config, from our config."""
    precision = resolve_precision(cfg.mixed_precision)
    scheduler: dict[str, Any] = {"lr_scheduler_type": cfg.lr_scheduler}
    if cfg.lr_scheduler == "cosine":
        scheduler = {
            "lr_scheduler_type": "cosine_with_min_lr",
            "lr_scheduler_kwargs": {"min_lr_rate": cfg.min_lr_ratio},
        }
    args: dict[str, Any] = {
        "output_dir": cfg.output_dir,
        "learning_rate": cfg.learning_rate,
        "num_train_epochs": cfg.num_train_epochs,
        "max_steps": cfg.max_steps,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "per_device_eval_batch_size": cfg.per_device_eval_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "warmup_steps": cfg.warmup_ratio,
        "weight_decay": cfg.weight_decay,
        "max_grad_norm": cfg.max_grad_norm,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "activation_checkpointing": cfg.gradient_checkpointing,
        "logging_steps": cfg.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": cfg.save_total_limit,
        "seed": cfg.seed,
        "report_to": "none",
        "disable_tqdm": not cfg.progress_bar,
        "dataloader_pin_memory": torch.cuda.is_available(),
        **scheduler,
    }
    args.update(overrides)
    args.update(cfg.extra_args)
    return args


def load_tokenizer(path: str):
    """The tokenizer of a model folder, with a pad token (eos if it has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load a tokenizer from {path!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise CheckpointError(f"the tokenizer of {path!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(path: str, **kwargs: Any):
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load a causal language model from {path!r}: {exc}") from exc


def load_scalar_model(path: str, pad_token_id: int, **kwargs: Any):
    """A sequence model with one output (reward or value); a new head if the folder is a causal LM."""
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, **kwargs)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load a model with a scalar head from {path!r}: {exc}") from exc
    model.config.pad_token_id = pad_token_id  # the score is read at the last non-pad token
    return model


def disable_dropout(model: torch.nn.Module) -> None:
    """Set every dropout to 0 (reward and value models, and PPO, whose ratios must start at 1)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that ignore left padding. (B, T) -> (B, T)"""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def position_limit(path: str) -> int | None:
    """How many positions the model at `path` can attend over (n_positions / max_position_embeddings),
    or None when its config names no limit. Reads config.json only."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError):
        return None  # the stage's own loading reports a bad path properly
    for name in ("n_positions", "max_position_embeddings", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def fit_lengths(cfg: Any) -> list[str]:
    """Cap a config's sequence lengths to what its model can hold, so a long prompt is truncated
    instead of indexing past the position embeddings. Returns a note per length changed."""
    limit = position_limit(cfg.model) if getattr(cfg, "model", "") else None
    if limit is None:
        return []
    notes = []
    if hasattr(cfg, "max_length") and cfg.max_length > limit:
        notes.append(f"max_length {cfg.max_length} -> {limit} (the model has {limit} positions)")
        cfg.max_length = limit
    if hasattr(cfg, "max_prompt_length") and hasattr(cfg, "max_new_tokens"):
        room = max(limit - cfg.max_new_tokens, 1)
        if cfg.max_prompt_length > room:
            notes.append(
                f"max_prompt_length {cfg.max_prompt_length} -> {room} "
                f"(the model has {limit} positions, {cfg.max_new_tokens} kept for the response)"
            )
            cfg.max_prompt_length = room
    return notes
