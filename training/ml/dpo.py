"""Stage 3 (alternative), direct preference optimisation on pairs with TRL's DPOTrainer.

The reference model is loaded from a folder on disk (the starting model unless ref_model is given):
TRL reloads the reference by path, which fails for a model that was never saved. The policy trains in
fp32 (mixed precision through autocast); the frozen reference is loaded in the run's half precision.
Pairs of one ranking are grouped (by ranking_id): all of them, or one drawn per ranking and epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback

from training.ml.callbacks import stage_callbacks
from training.ml.checkpoints import last_checkpoint, save_config, save_metrics
from training.ml.config import DPOConfig
from training.ml.data import as_pairs, load_rows, train_valid
from training.ml.errors import DatasetError
from training.ml.progress import Reporter
from training.ml.render import Renderer, Text, as_messages
from training.ml.reward_model import pad_right
from training.ml.runtime import (
    engine_notes,
    load_causal_lm,
    load_tokenizer,
    resolve_precision,
    save_trained_model,
    seed_everything,
    trainer_arguments,
)
from training.ml.shards import score_shards


@torch.no_grad()
def completion_logprobs(
    model: Any, renderer: Renderer, items: list[tuple[Text, Text]], max_length: int, batch_size: int = 16
) -> torch.Tensor:
    """Summed log-probability of each completion given its prompt (cut to max_length as the reward
    model path cuts: the prompt gives way first). -> (N,) on the CPU"""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(items), batch_size):
        seqs, starts = [], []
        for prompt, completion in items[start : start + batch_size]:
            seq, begin = renderer.split_ids(prompt, completion, max_length)
            seqs.append(seq)
            starts.append(begin)
        ids, mask = pad_right(seqs, renderer.tokenizer.pad_token_id)  # (b, T)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()  # (b, T, V)
        logp = (
            torch.log_softmax(logits[:, :-1], -1).gather(2, ids[:, 1:].to(device).unsqueeze(-1)).squeeze(-1)
        )
        positions = torch.arange(1, ids.shape[1], device=device)  # token t is predicted at t - 1
        target = (positions[None, :] >= torch.tensor(starts, device=device)[:, None]) & (
            mask[:, 1:].to(device) == 1
        )
        out.append((logp * target).sum(1).cpu())
    model.train(was_training)
    return torch.cat(out)


def chosen_margin(trainer: Any, renderer: Renderer, pairs: list[dict[str, Any]], cfg: DPOConfig) -> float:
    """Mean of log p(chosen) - log p(rejected) over pairs, through the model the Trainer prepared, each
    rank on its share of the pairs (training.ml.shards).

    Ours, not TRL's eval metrics: TRL logs rewards/margins (beta times the log-ratio against the
    reference), and averages per-batch means of gathered batches that repeat the padding items."""

    def logprobs(model: Any, chunk: list[tuple[Text, Text]]) -> torch.Tensor:
        return completion_logprobs(model, renderer, chunk, cfg.max_length, batch_size=len(chunk))

    batch = cfg.per_device_eval_batch_size
    chosen = score_shards(trainer, [(p["prompt"], p["chosen"]) for p in pairs], logprobs, batch)
    rejected = score_shards(trainer, [(p["prompt"], p["rejected"]) for p in pairs], logprobs, batch)
    return (chosen - rejected).mean().item()


class MarginAtStart(TrainerCallback):
    """The margin before the first step, once the Trainer has prepared (and maybe sharded) the model."""

    def __init__(self, measure: Callable[[], float]) -> None:
        self.measure = measure
        self.value: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.value = self.measure()


def trl_rows(pairs: list[dict[str, Any]], renderer: Renderer) -> list[dict[str, Any]]:
    """TRL's preference format: conversations for the chat template, else text with our prompt_template."""
    if renderer.chat:
        return [
            {
                "prompt": as_messages(p["prompt"], "user"),
                "chosen": as_messages(p["chosen"], "assistant"),
                "rejected": as_messages(p["rejected"], "assistant"),
            }
            for p in pairs
        ]
    return [{**p, "prompt": renderer.prompt_text(p["prompt"])} for p in pairs]


def train_pairs(cfg: DPOConfig, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
    """The train pairs and the epochs to run over them. With one pair per ranking, each epoch draws its
    own pair of every ranking: the draws of ceil(epochs) epochs are laid end to end and run once."""
    if cfg.pairs_per_ranking == "all":
        return as_pairs(rows), cfg.num_train_epochs
    draws = max(1, math.ceil(cfg.num_train_epochs))
    pairs = [p for epoch in range(draws) for p in as_pairs(rows, "one", seed=cfg.seed + epoch)]
    return pairs, cfg.num_train_epochs / draws


def run_dpo(cfg: DPOConfig, reporter: Reporter) -> dict[str, Any]:
    import trl
    from datasets import Dataset

    seed_everything(cfg.seed)
    if cfg.dataset_format not in {"auto", "rm_pairs", "rm_rankings"}:
        raise DatasetError(f"the dpo stage reads rm_pairs or rm_rankings files, not {cfg.dataset_format!r}")
    rows = load_rows(cfg.dataset, cfg.dataset_format, allowed=("rm_pairs", "rm_rankings"), splits=cfg.splits)
    train_rows, valid_rows = train_valid(rows, cfg.valid_fraction)
    train, epochs = train_pairs(cfg, train_rows)
    valid = as_pairs(valid_rows)
    if not train:
        raise DatasetError(f"{cfg.dataset} has no non-tied pairs in its train split")
    reporter.log(f"dpo: {len(train)} train and {len(valid)} valid pairs from {cfg.dataset}")
    tokenizer = load_tokenizer(cfg.model)
    renderer = Renderer.for_tokenizer(tokenizer, cfg.prompt_template, cfg.chat_template)
    reporter.log(f"dpo: prompts rendered with {renderer.describe()}")
    precision = resolve_precision(cfg.mixed_precision)
    resume_from = last_checkpoint(cfg.output_dir) if cfg.resume else None
    if resume_from:
        reporter.log(f"resuming from {resume_from}")
    # The arguments come before both models: with a DeepSpeed ZeRO-3 config they register it
    # (HfDeepSpeedConfig), and from_pretrained then partitions the weights as it loads them. TRL's
    # DPOTrainer loads models given by name after its args for the same reason; we load them ourselves
    # to keep the policy in fp32, the reference in the run's half precision and local folders off the hub.
    args = trl.DPOConfig(
        **trainer_arguments(
            cfg,
            beta=cfg.beta,
            max_length=cfg.max_length,
            num_train_epochs=epochs,
            eval_strategy="epoch" if valid else "no",
        )
    )
    for note in engine_notes(args):
        reporter.log(f"note: {note}")
    model = load_causal_lm(cfg.model, trainable=True)
    ref_model = load_causal_lm(cfg.ref_model or cfg.model, trainable=False, precision=precision)
    callback, callbacks = stage_callbacks("dpo", cfg, reporter)
    trainer = trl.DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=Dataset.from_list(trl_rows(train, renderer)),
        eval_dataset=Dataset.from_list(trl_rows(valid, renderer)) if valid else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    del model, ref_model  # from here on only through the trainer, which holds the prepared ones
    probe = valid or train
    at_start = MarginAtStart(lambda: chosen_margin(trainer, renderer, probe, cfg))
    if resume_from is None:
        trainer.add_callback(at_start)
    metrics: dict[str, Any] = {"train_pairs": len(train), "valid_pairs": len(valid)}
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    callback.raise_if_cancelled(cfg.output_dir)
    if at_start.value is not None:
        metrics["margin_start"] = at_start.value
    metrics.update(
        margin=chosen_margin(trainer, renderer, probe, cfg),
        train_loss=result.training_loss,
        steps=trainer.state.global_step,
        epochs=trainer.state.epoch,
        train_runtime=result.metrics.get("train_runtime"),
    )
    save_trained_model(trainer, cfg.model)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(cfg.output_dir)
        save_config(cfg.output_dir, "dpo", cfg)
        save_metrics(cfg.output_dir, metrics, trainer.state.log_history)
    return metrics
