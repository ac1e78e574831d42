"""Stage 2, the listwise reward model of InstructGPT, on transformers' Trainer.

A batch element is one prompt with all its K completions. Each completion goes through the model once;
the prompt's loss is the mean of -log sigmoid(r_w - r_l) over its C(K,2) non-tied pairs (tied pairs add
nothing), and the batch loss is the mean over prompts. K forward passes per prompt instead of 2*C(K,2).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from training.ml.callbacks import stage_callbacks
from training.ml.checkpoints import last_checkpoint, save_config, save_metrics
from training.ml.config import RewardConfig
from training.ml.data import as_rankings, format_prompt, load_rows, train_valid
from training.ml.errors import DatasetError
from training.ml.progress import Reporter
from training.ml.reward_model import encode, evaluate_rankings, score_texts, sequence_scores
from training.ml.runtime import (
    disable_dropout,
    load_scalar_model,
    load_tokenizer,
    seed_everything,
    trainer_arguments,
)


def listwise_loss(scores: torch.Tensor, ranks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over prompts of the mean pairwise loss of each prompt.

    scores: (B, K) float, ranks: (B, K) long with 0 the best, ties equal and -1 for padding.
    Returns the loss () and the pairwise accuracy () of the batch.
    """
    valid = ranks >= 0  # (B, K)
    better = (ranks[:, :, None] < ranks[:, None, :]) & valid[:, :, None] & valid[:, None, :]  # (B, K, K)
    margin = scores[:, :, None] - scores[:, None, :]  # (B, K, K): r_i - r_j
    pair_loss = -F.logsigmoid(margin) * better  # (B, K, K)
    pairs = better.sum(dim=(1, 2))  # (B,)
    has_pairs = pairs > 0
    if not has_pairs.any():  # only ties: no gradient signal, keep the graph
        return scores.sum() * 0.0, scores.new_tensor(float("nan"))
    per_prompt = pair_loss.sum(dim=(1, 2)) / pairs.clamp(min=1)  # (B,)
    accuracy = ((margin > 0) & better).sum() / better.sum()
    return per_prompt[has_pairs].mean(), accuracy.detach()


class RankingCollator:
    """Rankings -> every completion tokenized once, plus the (B, K) map from rankings to rows."""

    def __init__(self, tokenizer: Any, template: str, max_length: int) -> None:
        self.tokenizer, self.template, self.max_length = tokenizer, template, max_length

    def __call__(self, rankings: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(r["completions"]) for r in rankings)
        index = torch.full((len(rankings), width), -1, dtype=torch.long)  # (B, K) row of each completion
        ranks = torch.full((len(rankings), width), -1, dtype=torch.long)  # (B, K)
        texts: list[str] = []
        for b, ranking in enumerate(rankings):
            prompt = format_prompt(self.template, ranking["prompt"])
            for k, (completion, rank) in enumerate(
                zip(ranking["completions"], ranking["ranks"], strict=True)
            ):
                index[b, k], ranks[b, k] = len(texts), rank
                texts.append(prompt + completion)
        input_ids, attention_mask = encode(self.tokenizer, texts, self.max_length)  # (N, T)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "index": index, "ranks": ranks}


def grouped_scores(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Score every completion once and lay the scores out per prompt. -> (B, K), 0 where padded"""
    flat = sequence_scores(model, batch["input_ids"], batch["attention_mask"])  # (N,)
    index = batch["index"]
    return flat[index.clamp(min=0)] * (index >= 0)


class ListwiseRewardTrainer(Trainer):
    """transformers' Trainer with the listwise loss; logs the running pairwise accuracy too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_is_scaled_for_ga = False  # our loss is a mean: let the Trainer divide by accumulation steps
        self._accuracies: list[float] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        scores = grouped_scores(model, inputs)  # (B, K)
        loss, accuracy = listwise_loss(scores, inputs["ranks"])
        if not torch.isnan(accuracy):
            self._accuracies.append(accuracy.item())
        return (loss, {"scores": scores}) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self._accuracies and "loss" in logs:
            logs["accuracy"] = sum(self._accuracies) / len(self._accuracies)
            self._accuracies = []
        super().log(logs, *args, **kwargs)


def demonstration_texts(cfg: RewardConfig, train: list[dict[str, Any]]) -> list[str]:
    """Texts whose mean reward is set to 0: the SFT demonstrations, or else the best completions."""
    if cfg.demonstrations:
        rows = [r for r in load_rows(cfg.demonstrations, allowed=("sft",)) if r["split"] == "train"]
        texts = [format_prompt(cfg.prompt_template, r["prompt"]) + r["completion"] for r in rows]
    else:
        texts = []
        for r in train:
            best = min(r["ranks"])
            texts += [
                format_prompt(cfg.prompt_template, r["prompt"]) + c
                for c, k in zip(r["completions"], r["ranks"], strict=True)
                if k == best
            ]
    return texts[: cfg.bias_samples]


def run_reward(cfg: RewardConfig, reporter: Reporter) -> dict[str, Any]:
    seed_everything(cfg.seed)
    fmt = cfg.dataset_format
    if fmt not in {"auto", "rm_rankings", "rm_pairs"}:
        raise DatasetError(f"the rm stage reads rm_rankings or rm_pairs files, not {fmt!r}")
    rows = load_rows(cfg.dataset, fmt, allowed=("rm_rankings", "rm_pairs"))
    train, valid = train_valid(as_rankings(rows), cfg.valid_fraction)
    reporter.log(f"rm: {len(train)} train and {len(valid)} valid rankings from {cfg.dataset}")
    tokenizer = load_tokenizer(cfg.model)
    model = load_scalar_model(cfg.model, tokenizer.pad_token_id)
    if cfg.disable_dropout:
        disable_dropout(model)
    args = TrainingArguments(**trainer_arguments(cfg, remove_unused_columns=False))
    callback, callbacks = stage_callbacks("rm", cfg, reporter)
    trainer = ListwiseRewardTrainer(
        model=model,
        args=args,
        train_dataset=train,
        data_collator=RankingCollator(tokenizer, cfg.prompt_template, cfg.max_length),
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    resume_from = last_checkpoint(cfg.output_dir) if cfg.resume else None
    if resume_from:
        reporter.log(f"resuming from {resume_from}")
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    callback.raise_if_cancelled(cfg.output_dir)

    model = trainer.accelerator.unwrap_model(trainer.model)
    batch = cfg.per_device_eval_batch_size
    metrics: dict[str, Any] = {
        "train_rankings": len(train),
        "valid_rankings": len(valid),
        "train_loss": result.training_loss,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_runtime": result.metrics.get("train_runtime"),
    }
    if valid:
        held_out = evaluate_rankings(model, tokenizer, valid, cfg.prompt_template, cfg.max_length, batch)
        metrics.update(
            eval_accuracy=held_out["accuracy"],
            eval_log_loss=held_out["log_loss"],
            eval_pairs=held_out["pairs"],
        )
    demos = demonstration_texts(cfg, train)
    bias = -score_texts(model, tokenizer, demos, cfg.max_length, batch).mean().item() if demos else 0.0
    model.config.reward_bias = bias
    metrics["reward_bias"] = bias
    trainer.save_model(cfg.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(cfg.output_dir)
        save_config(cfg.output_dir, "rm", cfg, {"reward_bias": bias})
        save_metrics(cfg.output_dir, metrics, trainer.state.log_history)
    return metrics
