"""Typed stage configs: every field has a default and a help string (TRL style).

A config comes from an optional YAML/JSON file plus `--key value` overrides (CLI) or a dict (Python API);
`load_config` coerces strings to the field types and names any unknown key.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from training.ml.errors import ConfigError
from training.ml.recipes import recipe


def _f(default: Any, help: str) -> Any:
    """A dataclass field with a help string, as TRL's configs have."""
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class StageConfig:
    """Fields every stage shares: where the model, the data and the output live."""

    model: str = _f("", "Model folder or Hugging Face hub id to start from.")
    dataset: str = _f(
        "",
        "Dataset: a JSONL or Parquet file, a `datasets` save_to_disk folder, or a hub dataset id "
        "(when online or cached). Our exports' formats, TRL's standard and conversational formats, "
        "implicit-prompt pairs (HH-RLHF) and `messages` rows are all read.",
    )
    splits: str = _f(
        "",
        "Which named splits of a hub/save_to_disk dataset to read and how they map to train/valid/test: "
        "'' all (train* -> train; valid*, dev*, eval*, test* -> valid), 'train_prefs,test_prefs', or "
        "'train_prefs=train,test_prefs=valid'.",
    )
    output_dir: str = _f("", "Output folder: checkpoints, final model, training_config.yaml, metrics.json.")
    recipe: str = _f(
        "",
        "A named recipe (training/ml/configs/NAME.yaml; `python -m training.ml recipes` lists them) whose "
        "settings lie under the config file's and the command line's.",
    )
    seed: int = _f(0, "Random seed (python, numpy, torch, data order, sampling).")
    prompt_template: str = _f(
        "{prompt}\n",
        "How a plain-text prompt is written before its completion; must contain {prompt}. Keep it equal "
        "across stages. Not used when the chat template renders the prompts.",
    )
    chat_template: str = _f(
        "auto",
        "'auto': when the tokenizer has a chat template, every prompt and completion is rendered with it "
        "(a plain prompt becomes one user turn); 'none': always prompt_template. Conversational rows "
        "need a chat template.",
    )
    hub_kernels: bool = _f(
        False,
        "Let transformers fetch optimised kernels from the hub (kernels-community/*) on a GPU. Off: "
        "the stage never needs the network for a local model folder.",
    )
    valid_fraction: float = _f(
        0.05, "Share of train rows held out for evaluation when the file has no 'valid' rows."
    )
    resume: bool = _f(True, "Resume from the last checkpoint found in output_dir.")
    progress_bar: bool = _f(True, "Show tqdm progress bars on stderr.")


@dataclass
class TrainConfig(StageConfig):
    """Optimisation fields shared by the Trainer-based stages (sft, rm, dpo)."""

    learning_rate: float = _f(1e-5, "Peak learning rate.")
    num_train_epochs: float = _f(1.0, "Number of passes over the train split.")
    max_steps: int = _f(-1, "If > 0, stop after this many optimizer steps (overrides num_train_epochs).")
    per_device_train_batch_size: int = _f(8, "Train examples per device per micro-step.")
    per_device_eval_batch_size: int = _f(8, "Eval examples per device per step.")
    gradient_accumulation_steps: int = _f(1, "Micro-steps accumulated into one optimizer step.")
    lr_scheduler: str = _f(
        "cosine",
        "'cosine' (decays to min_lr_ratio of the peak), 'linear', 'constant' or 'constant_with_warmup'.",
    )
    min_lr_ratio: float = _f(0.1, "Final learning rate as a fraction of the peak for the cosine schedule.")
    warmup_ratio: float = _f(0.0, "Fraction of steps spent warming up the learning rate.")
    weight_decay: float = _f(0.0, "AdamW weight decay.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm.")
    max_length: int = _f(512, "Maximum tokens of prompt + completion; longer sequences are truncated.")
    mixed_precision: str = _f(
        "auto", "'auto' (bf16 on a GPU that has it, else fp32), 'no', 'bf16' or 'fp16'."
    )
    gradient_checkpointing: bool = _f(False, "Recompute activations in backward to save memory.")
    logging_steps: int = _f(10, "Log metrics every N optimizer steps.")
    save_steps: int = _f(500, "Write a resumable checkpoint every N optimizer steps.")
    save_total_limit: int = _f(2, "Keep at most this many checkpoint-N folders.")
    extra_args: dict = _f(
        {}, "Extra transformers/TRL training arguments (e.g. deepspeed, fsdp), as a JSON object."
    )


@dataclass
class SFTConfig(TrainConfig):
    """Supervised fine-tuning on demonstrations {"prompt", "completion"}, loss on completion tokens only."""

    num_train_epochs: float = _f(
        3.0, "Number of passes over the demonstrations (the paper used 16 with 13k)."
    )
    selection_reward_model: str = _f(
        "",
        "Reward model folder that picks the final checkpoint: at each epoch's end one response per valid "
        "prompt is sampled and scored, and the epoch with the best mean reward is kept (the paper picks "
        "its SFT model this way, not by validation loss). Empty: the last epoch.",
    )
    selection_prompts: int = _f(
        64, "Valid prompts sampled per epoch for the selection; 0 turns the selection off (the last epoch)."
    )
    selection_max_new_tokens: int = _f(64, "Maximum tokens of each selection response.")


@dataclass
class RewardConfig(TrainConfig):
    """Listwise reward model on rankings: all K completions of a prompt in one batch element."""

    learning_rate: float = _f(9e-6, "Peak learning rate (paper: 9e-6, cosine to 10%).")
    num_train_epochs: float = _f(1.0, "Passes over the rankings; the paper found more than one overfits.")
    per_device_train_batch_size: int = _f(8, "Prompts (rankings) per device per micro-step; paper: 64.")
    dataset_format: str = _f("auto", "'rm_rankings', 'rm_pairs' or 'auto' (detect from the first row).")
    demonstrations: str = _f(
        "",
        "SFT JSONL whose train completions get mean reward 0 (the bias); empty: use best-ranked completions.",
    )
    bias_samples: int = _f(2048, "At most this many demonstrations are scored to set the bias.")
    disable_dropout: bool = _f(
        True, "Turn dropout off, as reward models usually are (TRL's RewardTrainer too)."
    )
    pair_normalization: str = _f(
        "all_pairs",
        "A ranking's loss is its pairs' summed loss divided by C(K,2) ('all_pairs', the paper: a ranking "
        "with ties weighs less) or by its number of non-tied pairs ('pairs': every ranking weighs the same).",
    )


@dataclass
class PPOConfig(StageConfig):
    """PPO with a per-token KL penalty to the SFT model (InstructGPT recipe)."""

    dataset: str = _f("", "Prompts JSONL ({'prompt', 'split'}); any format with a 'prompt' field works.")
    reward_model: str = _f("", "Reward model folder (from the rm stage). Empty only with a Python reward_fn.")
    value_model: str = _f("", "Value model init; empty: the reward model, or the policy with a new head.")
    steps: int = _f(100, "PPO iterations; each samples batch_size episodes then updates.")
    batch_size: int = _f(64, "Episodes (prompt, response) per iteration per device; paper: 512.")
    mini_batch_size: int = _f(16, "Episodes per optimizer step; paper: 64.")
    micro_batch_size: int = _f(
        8, "Episodes per forward/backward pass (gradient accumulation inside a minibatch)."
    )
    ppo_epochs: int = _f(1, "Passes over each iteration's episodes.")
    generation_batch_size: int = _f(0, "Prompts per generate call in the rollout; 0: mini_batch_size.")
    rollout_backend: str = _f(
        "auto", "'auto' (vLLM when installed and on a GPU, else transformers), 'vllm' or 'transformers'."
    )
    static_cache: bool = _f(
        False, "transformers rollouts: a preallocated (static) KV cache instead of one grown per token."
    )
    compile: bool = _f(
        False, "transformers rollouts on a GPU: torch.compile the decoding forward (implies static_cache)."
    )
    vllm_gpu_memory_utilization: float = _f(
        0.3, "vLLM rollouts: share of GPU memory vLLM may take for weights and KV cache (colocated)."
    )
    learning_rate: float = _f(5e-6, "Policy learning rate.")
    value_learning_rate: float | None = _f(None, "Value model learning rate; default: learning_rate.")
    max_grad_norm: float = _f(1.0, "Gradient clipping norm of the policy.")
    value_max_grad_norm: float | None = _f(
        None, "Gradient clipping norm of the value model; default: max_grad_norm."
    )
    weight_decay: float = _f(
        0.0, "AdamW weight decay of both models (torch's AdamW would apply 0.01 if we did not set it)."
    )
    kl_coef: float = _f(0.02, "beta: per-token KL penalty coefficient against the reference (SFT) model.")
    adaptive_kl: bool = _f(False, "Adapt beta towards kl_target (Ziegler et al. 2019).")
    kl_target: float = _f(6.0, "Target KL per episode for the adaptive controller.")
    kl_horizon: int = _f(10000, "Horizon (episodes) of the adaptive controller.")
    gamma: float = _f(1.0, "Discount; 1 is the bandit setting of the paper.")
    lam: float = _f(0.95, "GAE lambda.")
    cliprange: float = _f(0.2, "Policy ratio clip.")
    cliprange_value: float = _f(0.2, "Value prediction clip around the old values.")
    vf_coef: float = _f(0.1, "Weight of the value loss.")
    temperature: float = _f(1.0, "Sampling temperature of the rollouts.")
    max_new_tokens: int = _f(64, "Maximum response tokens.")
    max_prompt_length: int = _f(256, "Prompts are cut to their last N tokens.")
    missing_eos_penalty: float | None = _f(
        None, "If set, subtract this from the score of responses with no EOS."
    )
    ptx_dataset: str = _f("", "SFT or text dataset for PPO-ptx; empty turns ptx off.")
    ptx_coef: float = _f(
        0.2,
        "Weight of the ptx term: the mean token NLL of pretraining/SFT text, next to the mean token "
        "clipped PPO loss on whitened advantages. Not the paper's gamma = 27.8, which on this scale "
        "gives ptx 60-100x the PPO gradient; watch ptx/grad_ratio (docs/training.md: PPO-ptx).",
    )
    ptx_ratio: float = _f(
        1.0,
        "ptx sequences per RL episode (paper: 8). Both terms are means, so this lowers the variance of "
        "the ptx term, not its weight; it costs ptx_ratio x micro_batch_size sequences per micro-step.",
    )
    eval_steps: int = _f(
        0, "Every N iterations, sample valid prompts (no update) and log eval/reward and eval/kl; 0: off."
    )
    eval_prompts: int = _f(64, "At most this many valid prompts per held-out evaluation.")
    ema_decay: float = _f(
        0.0, "Policy weight EMA decay (paper: 0.992); 0 turns it off. The EMA is what is saved."
    )
    mixed_precision: str = _f(
        "auto", "'auto' (bf16 on a GPU that has it, else fp32), 'no', 'bf16' or 'fp16'."
    )
    save_steps: int = _f(10, "Write a resumable checkpoint every N iterations.")
    save_total_limit: int = _f(2, "Keep at most this many checkpoint-N folders.")
    gradient_checkpointing: bool = _f(
        False,
        "Recompute the policy's and value's activations in the backward: less memory, one more forward.",
    )
    shared_trunk: bool = _f(
        False,
        "The value is a head on the policy's last hidden state instead of a separate model (one trunk "
        "fewer in memory); the head starts at 0, and the value loss then shapes the policy too (vf_coef).",
    )
    logprob_chunk: int = _f(
        64,
        "Response positions turned into log-probs and entropy at a time: only one chunk of fp32 "
        "full-vocabulary log-softmax exists at once.",
    )


@dataclass
class DPOConfig(TrainConfig):
    """Direct preference optimisation on pairs with TRL's DPOTrainer."""

    learning_rate: float = _f(1e-6, "Peak learning rate.")
    ref_model: str = _f("", "Reference model folder; empty: the starting model.")
    beta: float = _f(0.1, "DPO beta.")
    dataset_format: str = _f("auto", "'rm_pairs', 'rm_rankings' (every non-tied pair) or 'auto'.")
    pairs_per_ranking: str = _f(
        "all",
        "'all': every non-tied pair of a ranking; 'one': one pair drawn per ranking and epoch, so a "
        "ranking weighs the same whatever its K (pairs of one ranking are grouped by ranking_id).",
    )


@dataclass
class GenerateConfig(StageConfig):
    """Sample K completions per prompt, written as completions JSONL."""

    dataset: str = _f("", "Prompts JSONL; any format with a 'prompt' field works.")
    split: str = _f("", "Only prompts of this split ('train', 'valid', 'test'); empty: all.")
    num_samples: int = _f(4, "Completions per prompt (K).")
    temperature: float = _f(1.0, "Sampling temperature.")
    top_p: float = _f(1.0, "Nucleus sampling threshold.")
    max_new_tokens: int = _f(128, "Maximum tokens per completion.")
    max_prompt_length: int = _f(512, "Prompts are cut to their last N tokens.")
    batch_size: int = _f(8, "Prompts per generate call.")
    model_name: str = _f("", "Name written in the 'model' field; default: the model folder name.")
    use_vllm: str = _f("auto", "'auto' (vLLM when importable and on GPU), 'yes' or 'no'.")


@dataclass
class TinyConfig:
    """A tiny GPT-2 style model with a locally trained byte-level BPE tokenizer (tests and the demo)."""

    output_dir: str = _f("", "Folder to write the Hugging Face model and tokenizer to.")
    corpus: str = _f(
        "", "Text file (one document per line) to train the tokenizer on; empty: built-in corpus."
    )
    vocab_size: int = _f(512, "Tokenizer vocabulary size (bytes + merges + special tokens).")
    n_layer: int = _f(2, "Transformer blocks.")
    n_embd: int = _f(64, "Hidden size.")
    n_head: int = _f(4, "Attention heads.")
    n_positions: int = _f(256, "Maximum sequence length.")
    seed: int = _f(0, "Seed of the random weights.")


CONFIGS: dict[str, type] = {
    "sft": SFTConfig,
    "rm": RewardConfig,
    "ppo": PPOConfig,
    "dpo": DPOConfig,
    "generate": GenerateConfig,
    "tiny": TinyConfig,
}
ALIASES = {"out": "output_dir"}
RENAMED = {
    "ptx_batch_size": "ptx_ratio: ptx sequences per RL episode (ptx_batch_size / micro_batch_size gives the "
    "same count); both terms are means, so it never set the weight of ptx: ptx_coef does",
}
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def config_class(kind: str) -> type[Any]:
    if kind not in CONFIGS:
        raise ConfigError(f"unknown stage {kind!r}; choose one of {', '.join(CONFIGS)}")
    return CONFIGS[kind]


def _coerce(name: str, value: Any, annotation: Any) -> Any:
    """Turn a YAML value or a command-line string into the field's type, or raise ConfigError."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
            return None
        return _coerce(name, value, inner[0])
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise ValueError
        if annotation is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if annotation is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if annotation is str:
            if isinstance(value, dict | list):
                raise ValueError
            return "" if value is None else str(value)
        if annotation is dict:
            parsed = json.loads(value) if isinstance(value, str) else value
            if not isinstance(parsed, dict):
                raise ValueError
            return parsed
    except (ValueError, TypeError, json.JSONDecodeError):
        pass
    else:
        return value
    type_name = getattr(annotation, "__name__", str(annotation))
    raise ConfigError(f"config key {name!r} must be {type_name}, got {value!r}")


def load_config(kind: str, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Any:
    """Build the config of a stage from an optional YAML/JSON file and overrides (overrides win)."""
    cls = config_class(kind)
    values: dict[str, Any] = {}
    if path:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {path} must hold a mapping of key: value, got {type(loaded).__name__}"
            )
        values.update(loaded)
    values.update(overrides or {})
    if values.get("recipe"):
        values = {**recipe(str(values["recipe"]), kind).settings, **values}
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = ALIASES.get(str(raw_key).replace("-", "_"), str(raw_key).replace("-", "_"))
        if key in RENAMED and key not in known:
            raise ConfigError(f"config key {raw_key!r} is gone; use {RENAMED[key]}")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"unknown config key {raw_key!r} for stage {kind!r}{hint}")
        kwargs[key] = _coerce(key, value, hints[key])
    cfg = cls(**kwargs)
    _validate(kind, cfg)
    return cfg


def _validate(kind: str, cfg: Any) -> None:
    if not cfg.output_dir:
        raise ConfigError(f"stage {kind!r} needs output_dir (--output_dir DIR)")
    if kind == "tiny":
        return
    if not cfg.model:
        raise ConfigError(f"stage {kind!r} needs model (a model folder or hub id: --model PATH)")
    if not cfg.dataset:
        raise ConfigError(f"stage {kind!r} needs dataset (a file, folder or hub id: --dataset PATH)")
    if "{prompt}" not in cfg.prompt_template:
        raise ConfigError(f"prompt_template must contain {{prompt}}, got {cfg.prompt_template!r}")
    if cfg.chat_template not in {"auto", "none"}:
        raise ConfigError(f"chat_template must be auto or none, got {cfg.chat_template!r}")
    if getattr(cfg, "mixed_precision", "no") not in {"auto", "no", "bf16", "fp16"}:
        raise ConfigError(f"mixed_precision must be auto, no, bf16 or fp16, got {cfg.mixed_precision!r}")
    if kind == "ppo":
        if cfg.batch_size % cfg.mini_batch_size or cfg.mini_batch_size % cfg.micro_batch_size:
            raise ConfigError(
                "ppo needs batch_size divisible by mini_batch_size, and mini_batch_size by micro_batch_size; got "
                f"{cfg.batch_size}, {cfg.mini_batch_size}, {cfg.micro_batch_size}"
            )
        if cfg.ptx_ratio <= 0:
            raise ConfigError(f"ptx_ratio must be above 0, got {cfg.ptx_ratio}")
        if cfg.logprob_chunk < 1:
            raise ConfigError(f"logprob_chunk must be at least 1, got {cfg.logprob_chunk}")
        if cfg.rollout_backend not in {"auto", "vllm", "transformers"}:
            raise ConfigError(
                f"rollout_backend must be auto, vllm or transformers, got {cfg.rollout_backend!r}"
            )
        if not 0 < cfg.vllm_gpu_memory_utilization <= 1:
            raise ConfigError(
                f"vllm_gpu_memory_utilization must be in (0, 1], got {cfg.vllm_gpu_memory_utilization}"
            )
    if kind == "dpo" and cfg.pairs_per_ranking not in {"all", "one"}:
        raise ConfigError(f"pairs_per_ranking must be all or one, got {cfg.pairs_per_ranking!r}")
    if kind == "rm" and cfg.pair_normalization not in {"all_pairs", "pairs"}:
        raise ConfigError(f"pair_normalization must be all_pairs or pairs, got {cfg.pair_normalization!r}")


def config_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def format_config(kind: str, cfg: Any) -> str:
    """The config as YAML, printed at the start of every stage."""
    return f"# stage: {kind}\n" + yaml.safe_dump(config_dict(cfg), sort_keys=False)


def describe(kind: str) -> str:
    """One line per field: name, type, default and help (for --help)."""
    cls = config_class(kind)
    hints = typing.get_type_hints(cls)
    lines = [f"{kind}: {(cls.__doc__ or '').strip()}", ""]
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        type_name = getattr(hints[f.name], "__name__", str(hints[f.name]))
        lines.append(f"  --{f.name} ({type_name}, default {default!r}): {f.metadata.get('help', '')}")
    return "\n".join(lines)
