"""What a client may set on a training run or on a round's step: hyperparameters, nothing else.

The server alone decides every path a run reads or writes: its output folder (MEDIA_ROOT/runs/run-<id>, a
retry reuses its own), its models (ModelVersion rows), its data (DatasetSnapshot rows). Whether it resumes,
whether it reaches the hub, and any option passed through to transformers (extra_args: deepspeed or fsdp
files, report_to, push_to_hub...) are the server's too. Every field of training.ml's stage configs is in
exactly one of HYPERPARAMETERS and SERVER_OWNED (tests/training/test_run_settings.py checks it), so a new
field stays closed to clients until someone decides otherwise. A named recipe (training/ml/configs/) is a
hyperparameter too: its settings are spelled out into the run's config, under the client's own values.
"""

import dataclasses
from typing import Any

from core.errors import ServiceError
from training.ml.config import config_class, load_config
from training.ml.errors import ConfigError
from training.ml.recipes import recipe

from ..models import RunKind

SERVER_OWNED = frozenset(
    {
        "model",
        "dataset",
        "output_dir",
        "reward_model",
        "value_model",
        "ref_model",
        "ptx_dataset",
        "demonstrations",
        "selection_reward_model",
        "resume",
        "extra_args",
        "hub_kernels",
        "model_name",
        "use_vllm",
        "rollout_backend",  # vLLM or not is the GPU worker's set-up, as use_vllm
        "vllm_gpu_memory_utilization",
        "corpus",
    }
)
HYPERPARAMETERS = frozenset(
    {
        # every stage
        "recipe", "seed", "splits", "prompt_template", "chat_template", "valid_fraction", "progress_bar",
        # Trainer stages
        "learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
        "per_device_eval_batch_size", "gradient_accumulation_steps", "lr_scheduler", "min_lr_ratio",
        "warmup_ratio", "weight_decay", "max_grad_norm", "max_length", "mixed_precision",
        "gradient_checkpointing", "logging_steps", "save_steps", "save_total_limit",
        # sft, rm, dpo
        "selection_prompts", "selection_max_new_tokens", "dataset_format", "bias_samples",
        "disable_dropout", "pair_normalization", "beta", "pairs_per_ranking",
        # ppo
        "steps", "batch_size", "mini_batch_size", "micro_batch_size", "ppo_epochs", "generation_batch_size",
        "value_learning_rate", "value_max_grad_norm", "kl_coef", "adaptive_kl", "kl_target", "kl_horizon",
        "gamma", "lam", "cliprange", "cliprange_value", "vf_coef", "temperature", "max_new_tokens",
        "max_prompt_length", "missing_eos_penalty", "ptx_coef", "ptx_ratio", "eval_steps", "eval_prompts",
        "ema_decay", "shared_trunk", "logprob_chunk", "static_cache", "compile",
        # generate
        "split", "num_samples", "top_p",
        # tiny
        "vocab_size", "n_layer", "n_embd", "n_head", "n_positions",
    }
)  # fmt: skip
RUN_KEYS = {"max_prompts", "auto_eval_prompts"}  # read by the run's own service, not by training.ml
_PLACEHOLDERS = {"model": "m", "dataset": "d", "output_dir": "o"}


def allowed_keys(kind: str) -> set[str]:
    fields = {f.name for f in dataclasses.fields(config_class(kind))}
    return (fields & HYPERPARAMETERS) | RUN_KEYS


def settings_clean(*, kind: str, settings: Any, field: str = "config") -> dict:
    """The client's settings for a run of `kind`, checked and typed as training.ml will read them;
    a server-owned or unknown key, or a bad value, is a ServiceError naming it."""
    if not isinstance(settings, dict):
        raise ServiceError(f"{field} must be an object of key: value pairs.", field=field)
    allowed = allowed_keys(kind)
    for key in settings:
        if key in SERVER_OWNED:
            raise ServiceError(
                f"'{key}' is set by the server (paths, models, data, resuming and engine options are); "
                f"a {kind} run takes only hyperparameters.",
                field=f"{field}.{key}",
            )
        if key not in allowed:
            raise ServiceError(
                f"unknown {kind} setting '{key}'; known: {', '.join(sorted(allowed))}.",
                field=f"{field}.{key}",
            )
    for key in RUN_KEYS & set(settings):
        value = settings[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ServiceError(
                f"'{key}' must be a whole number of at least 1, got {value!r}.", field=f"{field}.{key}"
            )
    stage = {k: v for k, v in settings.items() if k not in RUN_KEYS}
    try:
        typed = load_config(kind, overrides={**_PLACEHOLDERS, **stage})
    except ConfigError as exc:
        raise ServiceError(f"{field}: {exc}.", field=field) from None
    # A recipe is stored spelled out, so the run's config shows every value it trains with.
    keys = set(stage) | (set(recipe(typed.recipe, kind).settings) if typed.recipe else set())
    return {**{k: getattr(typed, k) for k in keys}, **{k: settings[k] for k in RUN_KEYS & set(settings)}}


def stage_settings_clean(*, stage_config: Any) -> dict:
    """A round's per-step settings: {step: settings}. One stage_config may serve PPO and DPO rounds
    alike: each round reads the steps it has."""
    if not isinstance(stage_config, dict):
        raise ServiceError("stage_config must be an object of step: settings.", field="stage_config")
    runnable = RunKind.values  # a round's steps that run are runs of these kinds
    clean = {}
    for step, settings in stage_config.items():
        if step not in runnable:
            raise ServiceError(
                f"stage_config: unknown step '{step}'; the steps with settings are {', '.join(runnable)}.",
                field="stage_config",
            )
        clean[step] = settings_clean(kind=step, settings=settings, field=f"stage_config.{step}")
    return clean
