"""Stage 2, the listwise reward model of InstructGPT, on transformers' Trainer.

A batch element is one ranking: a prompt with all its K completions and the (better, worse) pairs
between them. Each completion goes through the model once; the element's loss is the sum of
-log sigmoid(r_w - r_l) over its pairs divided by C(K,2) (the paper's normaliser; tied pairs add
nothing) or by its number of pairs (pair_normalization 'pairs'); the batch loss is the mean over
elements. K forward passes per prompt instead of 2*C(K,2).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from training.ml.callbacks import stage_callbacks
from training.ml.checkpoints import last_checkpoint, save_config, save_metrics
from training.ml.config import RewardConfig
from training.ml.data import load_rows, preference_groups, train_valid
from training.ml.errors import DatasetError
from training.ml.progress import Reporter
from training.ml.render import Renderer
from training.ml.reward_model import (
    pad_right,
    pairwise_accuracy,
    ranking_items,
    ranking_metrics,
    score_pairs,
    sequence_scores,
)
from training.ml.runtime import (
    disable_dropout,
    engine_notes,
    load_scalar_model,
    load_tokenizer,
    save_trained_model,
    seed_everything,
    trainer_arguments,
)
from training.ml.shards import score_shards


def listwise_loss(
    scores: torch.Tensor, better: torch.Tensor, sizes: torch.Tensor, normalization: str = "all_pairs"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over elements of each element's pairwise loss.

    scores: (B, K) float; better: (B, K, K) bool, better[b, i, j] when completion i beats j;
    sizes: (B,) the K of each element. Returns the loss () and the pairwise accuracy () of the batch
    (an exact score tie counts half, as in evaluation).
    """
    margin = scores[:, :, None] - scores[:, None, :]  # (B, K, K): r_i - r_j
    pair_loss = -F.logsigmoid(margin) * better  # (B, K, K)
    pairs = better.sum(dim=(1, 2))  # (B,)
    has_pairs = pairs > 0
    if not has_pairs.any():  # only ties: no gradient signal, keep the graph
        return scores.sum() * 0.0, scores.new_tensor(float("nan"))
    if normalization == "all_pairs":
        denominator = sizes * (sizes - 1) / 2  # C(K,2)
    else:
        denominator = pairs
    per_element = pair_loss.sum(dim=(1, 2)) / denominator.clamp(min=1)  # (B,)
    accuracy = pairwise_accuracy(margin[better])
    return per_element[has_pairs].mean(), accuracy.detach()


class RankingCollator:
    """Groups -> every completion tokenized once, plus the (B, K) map from groups to rows and the
    (B, K, K) matrix of which completion beats which."""

    def __init__(self, renderer: Renderer, max_length: int) -> None:
        self.renderer, self.max_length = renderer, max_length

    def __call__(self, groups: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(g["completions"]) for g in groups)
        index = torch.full((len(groups), width), -1, dtype=torch.long)  # (B, K) row of each completion
        better = torch.zeros((len(groups), width, width), dtype=torch.bool)  # (B, K, K)
        sequences: list[list[int]] = []
        for b, group in enumerate(groups):
            for k, completion in enumerate(group["completions"]):
                index[b, k] = len(sequences)
                sequences.append(self.renderer.scored_ids(group["prompt"], completion, self.max_length))
            for w, lo in group["pairs"]:
                better[b, w, lo] = True
        input_ids, attention_mask = pad_right(sequences, self.renderer.tokenizer.pad_token_id)  # (N, T)
        sizes = torch.tensor([len(g["completions"]) for g in groups], dtype=torch.float)
        return {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "index": index,
            "better": better,
            "sizes": sizes,
        }


def grouped_scores(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Score every completion once and lay the scores out per element. -> (B, K), 0 where padded"""
    flat = sequence_scores(model, batch["input_ids"], batch["attention_mask"])  # (N,)
    index = batch["index"]
    return flat[index.clamp(min=0)] * (index >= 0)


class ListwiseRewardTrainer(Trainer):
    """transformers' Trainer with the listwise loss; logs the running pairwise accuracy too."""

    def __init__(self, *args: Any, normalization: str = "all_pairs", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_is_scaled_for_ga = False  # our loss is a mean: let the Trainer divide by accumulation steps
        self.normalization = normalization
        self._accuracies: list[float] = []

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        scores = grouped_scores(model, inputs)  # (B, K)
        loss, accuracy = listwise_loss(scores, inputs["better"], inputs["sizes"], self.normalization)
        if not torch.isnan(accuracy):
            self._accuracies.append(accuracy.item())
        return (loss, {"scores": scores}) if return_outputs else loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if self._accuracies and "loss" in logs:
            logs["accuracy"] = sum(self._accuracies) / len(self._accuracies)
            self._accuracies = []
        super().log(logs, *args, **kwargs)


def demonstrations(cfg: RewardConfig, train: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    """(prompt, completion) pairs whose mean reward is set to 0: the SFT demonstrations, or else the
    best completions of each ranking (those that lose no pair)."""
    if cfg.demonstrations:
        rows = load_rows(cfg.demonstrations, allowed=("sft",), splits=cfg.splits)
        items = [(r["prompt"], r["completion"]) for r in rows if r["split"] == "train"]
    else:
        items = []
        for group in train:
            losers = {lo for _, lo in group["pairs"]}
            items += [(group["prompt"], c) for k, c in enumerate(group["completions"]) if k not in losers]
    return items[: cfg.bias_samples]


def run_reward(cfg: RewardConfig, reporter: Reporter) -> dict[str, Any]:
    seed_everything(cfg.seed)
    if cfg.dataset_format not in {"auto", "rm_rankings", "rm_pairs"}:
        raise DatasetError(f"the rm stage reads rm_rankings or rm_pairs files, not {cfg.dataset_format!r}")
    rows = load_rows(cfg.dataset, cfg.dataset_format, allowed=("rm_rankings", "rm_pairs"), splits=cfg.splits)
    train, valid = train_valid(preference_groups(rows), cfg.valid_fraction)
    reporter.log(f"rm: {len(train)} train and {len(valid)} valid rankings from {cfg.dataset}")
    tokenizer = load_tokenizer(cfg.model)
    renderer = Renderer.for_tokenizer(tokenizer, cfg.prompt_template, cfg.chat_template)
    reporter.log(f"rm: prompts rendered with {renderer.describe()}")
    # The arguments come first: with a DeepSpeed ZeRO-3 config they register it (HfDeepSpeedConfig),
    # and from_pretrained then partitions the weights as it loads them (runtime.trainer_arguments).
    args = TrainingArguments(**trainer_arguments(cfg, remove_unused_columns=False))
    for note in engine_notes(args):
        reporter.log(f"note: {note}")
    model = load_scalar_model(cfg.model, tokenizer.pad_token_id, trainable=True)
    if cfg.disable_dropout:
        disable_dropout(model)
    callback, callbacks = stage_callbacks("rm", cfg, reporter)
    trainer = ListwiseRewardTrainer(
        model=model,
        args=args,
        train_dataset=train,
        data_collator=RankingCollator(renderer, cfg.max_length),
        processing_class=tokenizer,
        callbacks=callbacks,
        normalization=cfg.pair_normalization,
    )
    del model  # from here on only through the trainer, which holds the prepared (maybe sharded) one
    resume_from = last_checkpoint(cfg.output_dir) if cfg.resume else None
    if resume_from:
        reporter.log(f"resuming from {resume_from}")
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    callback.raise_if_cancelled(cfg.output_dir)

    metrics: dict[str, Any] = {
        "train_rankings": len(train),
        "valid_rankings": len(valid),
        "train_loss": result.training_loss,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_runtime": result.metrics.get("train_runtime"),
    }
    if valid:
        items, pairs = ranking_items(valid)
        held_out = ranking_metrics(scores_after_training(trainer, renderer, items, cfg), pairs)
        metrics.update(
            eval_accuracy=held_out["accuracy"],
            eval_log_loss=held_out["log_loss"],
            eval_pairs=held_out["pairs"],
        )
    demos = demonstrations(cfg, train)
    bias = -scores_after_training(trainer, renderer, demos, cfg).mean().item() if demos else 0.0
    trained = trainer.accelerator.unwrap_model(trainer.model)  # its config is whole on every rank
    trained.config.reward_bias = bias
    metrics["reward_bias"] = bias
    save_trained_model(trainer, cfg.model)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(cfg.output_dir)
        save_config(cfg.output_dir, "rm", cfg, {"reward_bias": bias})
        save_metrics(cfg.output_dir, metrics, trainer.state.log_history)
    return metrics


def scores_after_training(
    trainer: Trainer, renderer: Renderer, items: list[tuple[Any, Any]], cfg: RewardConfig
) -> torch.Tensor:
    """Raw scores of (prompt, completion) items through the prepared model, each rank on its share. -> (N,)"""

    def score(model: Any, chunk: list[tuple[Any, Any]]) -> torch.Tensor:
        return score_pairs(model, renderer, chunk, cfg.max_length, batch_size=len(chunk))

    return score_shards(trainer, items, score, cfg.per_device_eval_batch_size)
