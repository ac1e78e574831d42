"""Where a stage runs: seeds, device, precision, and the Trainer arguments every Trainer-based stage shares."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.ml.config import TrainConfig
from training.ml.errors import CheckpointError, ConfigError


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
    """Keyword arguments for transformers.TrainingArguments or a TRL config, from our config.

    Build the arguments before loading the model: TrainingArguments with `deepspeed` set (extra_args)
    or under `accelerate launch` with a DeepSpeed config (ACCELERATE_USE_DEEPSPEED) registers the
    config (HfDeepSpeedConfig, kept alive by the arguments), and from_pretrained then partitions the
    weights at load under ZeRO-3 instead of loading a full copy on every rank. FSDP is different:
    transformers loads on local rank 0 only (meta weights elsewhere) when ACCELERATE_USE_FSDP and
    FSDP_CPU_RAM_EFFICIENT_LOADING are both set, which `accelerate launch` with an FSDP config does;
    `fsdp` given through extra_args sets only the second, so every rank loads a full CPU copy until
    the Trainer shards it."""
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


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "false").strip().lower() in {"1", "true", "yes"}


def engine_notes(args: Any) -> list[str]:
    """What a run's sharding settings amount to on this machine, checked before the model loads.

    accelerate (1.16) turns FSDP on only on GPU-like devices (AcceleratorState leaves MULTI_CPU alone),
    although torch's FSDP2 itself shards on the CPU with gloo: a CPU run that asks for FSDP (accelerate
    launch with an FSDP config, or `fsdp` in extra_args) is plain DDP, every rank holding the whole
    model. With FSDP_CPU_RAM_EFFICIENT_LOADING on top, transformers (which reads only the environment)
    would load meta weights on every rank but the first, and the Trainer would die copying them to the
    device ("Cannot copy out of meta tensor"): that is refused here with a message instead."""
    asked = bool(getattr(args, "fsdp", None)) or _env_flag("ACCELERATE_USE_FSDP")
    if not asked or args.device.type != "cpu":
        return []
    if (
        _env_flag("ACCELERATE_USE_FSDP")
        and _env_flag("FSDP_CPU_RAM_EFFICIENT_LOADING")
        and args.world_size > 1
    ):
        raise ConfigError(
            "FSDP with cpu_ram_efficient_loading cannot run on the CPU: accelerate runs FSDP only on GPUs, "
            "so the ranks that load meta weights are never filled. Choose a DDP launch config on the CPU."
        )
    return ["FSDP was asked for, but accelerate runs FSDP only on GPUs: on the CPU this run is DDP"]


def use_hub_kernels(enabled: bool) -> None:
    """transformers (v5) with `kernels` installed fetches kernels-community/* from the hub on CUDA, which
    dies on an offline GPU box; our stages keep them off unless `hub_kernels: true` asks for them."""
    os.environ["USE_HUB_KERNELS"] = "YES" if enabled else "NO"


def _local(path: str) -> dict[str, Any]:
    """A model folder on disk is read from disk only: never a call to the hub for it."""
    return {"local_files_only": True} if Path(path).is_dir() else {}


def load_tokenizer(path: str) -> Any:
    """The tokenizer of a model folder, with a pad token (eos if it has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **_local(path))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load a tokenizer from {path!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise CheckpointError(f"the tokenizer of {path!r} has neither a pad nor an eos token")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def frozen_dtype(precision: str) -> torch.dtype:
    """Weights of a model that only runs forward: in the run's half precision, else fp32."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)


def _load(auto_class: Any, path: str, what: str, trainable: bool, precision: str, **kwargs: Any) -> Any:
    """A trainable model loads in fp32, whatever the checkpoint's dtype: since transformers v5
    from_pretrained keeps a bf16 checkpoint in bf16, and AdamW on bf16 weights (no fp32 master copy)
    drops most small updates. Speed comes from autocast (mixed_precision), as in TRL and the Trainer."""
    dtype = torch.float32 if trainable else frozen_dtype(precision)
    try:
        model = auto_class.from_pretrained(path, dtype=dtype, **_local(path), **kwargs)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load {what} from {path!r}: {exc}") from exc
    if not trainable:
        model.eval()
        model.requires_grad_(False)
    return model


def load_causal_lm(path: str, *, trainable: bool, precision: str = "no", **kwargs: Any) -> Any:
    from transformers import AutoModelForCausalLM

    return _load(AutoModelForCausalLM, path, "a causal language model", trainable, precision, **kwargs)


def load_scalar_model(path: str, pad_token_id: int, *, trainable: bool, precision: str = "no") -> Any:
    """A sequence model with one output (reward or value); a new head if the folder is a causal LM."""
    from transformers import AutoModelForSequenceClassification

    model = _load(
        AutoModelForSequenceClassification,
        path,
        "a model with a scalar head",
        trainable,
        precision,
        num_labels=1,
    )
    model.config.pad_token_id = pad_token_id
    if not isinstance(getattr(model, "score", None), torch.nn.Module):
        raise CheckpointError(
            f"{type(model).__name__} from {path!r} has no 'score' head; reward and value models must be "
            "a causal LM's *ForSequenceClassification (GPT-2, Llama, Qwen, Mistral, Gemma... have one)"
        )
    return model


def load_generation_config(path: str) -> Any:
    """The checkpoint's generation_config (its stop tokens), or None when it has none."""
    from transformers import GenerationConfig

    try:
        return GenerationConfig.from_pretrained(path, **_local(path))
    except (OSError, ValueError):
        return None


def checkpoint_dtype(path: str) -> torch.dtype | None:
    """The dtype a checkpoint was saved in (config.json), so a stage can save its result the same way."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path, **_local(path))
    except (OSError, ValueError):
        return None
    dtype = getattr(config, "dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype if isinstance(dtype, torch.dtype) else None


def refuse_half_trainables(model: torch.nn.Module, engine_keeps_master: bool = False) -> None:
    """Refuse to train a bf16/fp16 parameter unless an engine (DeepSpeed) keeps an fp32 master copy."""
    if engine_keeps_master:
        return
    half = [
        name
        for name, p in model.named_parameters()
        if p.requires_grad and p.dtype in (torch.bfloat16, torch.float16)
    ]
    if half:
        raise CheckpointError(
            f"{len(half)} trainable parameters are {dict(model.named_parameters())[half[0]].dtype} "
            f"(first: {half[0]}): AdamW would update them with no fp32 master copy and lose most small "
            "updates. Load trainable models in fp32 and train with mixed_precision bf16 (autocast)."
        )


_DROPOUT_ATTRIBUTES = (
    "attention_dropout",
    "attn_dropout",
    "attn_pdrop",
    "resid_pdrop",
    "embd_pdrop",
    "hidden_dropout",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "activation_dropout",
    "classifier_dropout",
    "summary_first_dropout",
    "dropout",
)


def disable_dropout(model: torch.nn.Module) -> None:
    """Every dropout off: nn.Dropout modules, and the float rates that attention code reads from the
    config or its module at call time (Llama's `self.attention_dropout`), which no nn.Dropout shows.
    Reward and value models, and PPO, whose ratios must start at exactly 1."""
    config = getattr(model, "config", None)
    for module in [*model.modules(), *([config] if config is not None else [])]:
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        for name in _DROPOUT_ATTRIBUTES:
            value = getattr(module, name, None)
            if isinstance(value, float) and not isinstance(value, bool) and value > 0:
                setattr(module, name, 0.0)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that ignore left padding. (B, T) -> (B, T)"""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def position_limit(path: str) -> int | None:
    """How many positions the model at `path` can attend over (n_positions / max_position_embeddings),
    or None when its config names no limit. Reads config.json only."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path, **_local(path))
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


def to_checkpoint_dtype(model: torch.nn.Module, source: str) -> None:
    """Cast a trained model back to the half precision of the checkpoint it started from (a bf16
    checkpoint stays bf16 on disk: half the size of the fp32 copy it trained as)."""
    dtype = checkpoint_dtype(source)
    if dtype in (torch.bfloat16, torch.float16):
        model.to(dtype)


def save_trained_model(trainer: Any, source: str) -> None:
    """Write a Trainer's model as one folder that from_pretrained reads, in the dtype of its starting
    checkpoint; the DeepSpeed engine saves what it gathers (16-bit weights with the shipped configs).

    FSDP: transformers' save_model writes no weights at all unless the state dict type is
    FULL_STATE_DICT, and SHARDED_STATE_DICT is what resumable checkpoints want. So the full weights are
    gathered here (accelerate.get_state_dict: every rank takes part, rank 0 gets them on the CPU) and
    written through the Trainer's own FULL_STATE_DICT path (Trainer._save)."""
    if getattr(trainer, "is_fsdp_enabled", False):
        state_dict = trainer.accelerator.get_state_dict(trainer.model)
        dtype = checkpoint_dtype(source)
        if dtype in (torch.bfloat16, torch.float16):
            state_dict = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()}
        trainer._save(trainer.args.output_dir, state_dict=state_dict)
        return
    if not getattr(trainer, "is_deepspeed_enabled", False):
        to_checkpoint_dtype(trainer.accelerator.unwrap_model(trainer.model), source)
    trainer.save_model(trainer.args.output_dir)
