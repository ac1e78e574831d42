"""Stage 1, supervised fine-tuning on demonstrations with TRL's SFTTrainer (loss on completion tokens only).

Rows go to TRL as plain prompt/completion text (our prompt_template; TRL appends the eos) or, when the
chat template renders them, as conversations that TRL renders with it (no double BOS: TRL tokenizes
chat text without adding special tokens). With selection_reward_model the final model is the epoch
whose samples the reward model scores best on the valid prompts (selection.py), as in the paper.
"""

from __future__ import annotations

from typing import Any

from training.ml.callbacks import stage_callbacks
from training.ml.checkpoints import last_checkpoint, save_config, save_metrics
from training.ml.config import SFTConfig
from training.ml.data import load_rows, train_valid
from training.ml.errors import DatasetError
from training.ml.progress import Reporter
from training.ml.render import Renderer, as_messages, is_conversation
from training.ml.runtime import (
    engine_notes,
    load_causal_lm,
    load_tokenizer,
    resolve_precision,
    save_trained_model,
    seed_everything,
    trainer_arguments,
)
from training.ml.selection import SELECT_METRIC, RewardSelection


def sft_dataset(rows: list[dict[str, Any]], renderer: Renderer) -> Any:
    """TRL's prompt-completion format, standard or conversational: the completion-only loss comes from it."""
    from datasets import Dataset

    items: list[dict[str, Any]]
    if renderer.chat:
        items = [
            {
                "prompt": as_messages(r["prompt"], "user"),
                "completion": as_messages(r["completion"], "assistant"),
            }
            for r in rows
        ]
    else:
        if any(is_conversation(r["prompt"]) for r in rows[:1]):
            renderer.prompt_text(rows[0]["prompt"])  # raises the DatasetError that explains it
        items = [{"prompt": renderer.prompt_text(r["prompt"]), "completion": r["completion"]} for r in rows]
    return Dataset.from_list(items)


def _eval_losses(history: list[dict[str, Any]]) -> list[float]:
    return [row["eval_loss"] for row in history if "eval_loss" in row]


def _last_eval_loss(history: list[dict[str, Any]]) -> float | None:
    losses = _eval_losses(history)
    return losses[-1] if losses else None


def run_sft(cfg: SFTConfig, reporter: Reporter) -> dict[str, Any]:
    import trl

    seed_everything(cfg.seed)
    rows = load_rows(cfg.dataset, allowed=("sft",), splits=cfg.splits)
    train_rows, valid_rows = train_valid(rows, cfg.valid_fraction)
    reporter.log(
        f"sft: {len(train_rows)} train and {len(valid_rows)} valid demonstrations from {cfg.dataset}"
    )
    select = bool(cfg.selection_reward_model) and cfg.selection_prompts > 0
    if select and not valid_rows:
        raise DatasetError("selection_reward_model needs valid prompts: the dataset has no valid rows")
    tokenizer = load_tokenizer(cfg.model)
    renderer = Renderer.for_tokenizer(tokenizer, cfg.prompt_template, cfg.chat_template)
    reporter.log(f"sft: prompts rendered with {renderer.describe()}")
    resume_from = last_checkpoint(cfg.output_dir) if cfg.resume else None
    if resume_from:
        reporter.log(f"resuming from {resume_from}")
    selecting = {}
    if select:  # the Trainer keeps the best epoch's checkpoint and loads it at the end
        selecting = {
            "save_strategy": "epoch",
            "load_best_model_at_end": True,
            "metric_for_best_model": SELECT_METRIC,
            "greater_is_better": True,
        }
    # The arguments come before the model: with a DeepSpeed ZeRO-3 config they register it
    # (HfDeepSpeedConfig), and from_pretrained then partitions the weights as it loads them. TRL's
    # SFTTrainer loads a model given by name after its args for the same reason; we load it ourselves
    # to keep trainable weights in fp32 and a local folder off the hub (runtime._load).
    args = trl.SFTConfig(
        **trainer_arguments(
            cfg,
            max_length=cfg.max_length,
            completion_only_loss=True,
            packing=False,
            eval_strategy="epoch" if valid_rows else "no",
            # the loss before training, taken after the Trainer prepared (and maybe sharded) the model
            eval_on_start=bool(valid_rows) and resume_from is None,
            **selecting,
        )
    )
    for note in engine_notes(args):
        reporter.log(f"note: {note}")
    model = load_causal_lm(cfg.model, trainable=True)
    callback, callbacks = stage_callbacks("sft", cfg, reporter)
    if select:
        callbacks.append(
            RewardSelection(
                cfg.selection_reward_model,
                [r["prompt"] for r in valid_rows[: cfg.selection_prompts]],
                renderer,
                model.generation_config,
                max_new_tokens=cfg.selection_max_new_tokens,
                max_prompt_length=max(cfg.max_length - cfg.selection_max_new_tokens, 1),
                seed=cfg.seed,
                precision=resolve_precision(cfg.mixed_precision),
                reporter=reporter,
            )
        )
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=sft_dataset(train_rows, renderer),
        eval_dataset=sft_dataset(valid_rows, renderer) if valid_rows else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    del model  # from here on only through the trainer, which holds the prepared (maybe sharded) one
    metrics: dict[str, Any] = {"train_rows": len(train_rows), "valid_rows": len(valid_rows)}
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    callback.raise_if_cancelled(cfg.output_dir)
    history = trainer.state.log_history
    if valid_rows:
        if resume_from is None:
            metrics["eval_loss_start"] = _eval_losses(history)[0]
        final = _last_eval_loss(history)
        metrics["eval_loss"] = final if final is not None else trainer.evaluate()["eval_loss"]
    if select:
        selection = next(c for c in callbacks if isinstance(c, RewardSelection))
        metrics.update(selection.summary())
    metrics.update(
        train_loss=result.training_loss,
        steps=trainer.state.global_step,
        epochs=trainer.state.epoch,
        train_runtime=result.metrics.get("train_runtime"),
    )
    save_trained_model(trainer, cfg.model)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(cfg.output_dir)
        save_config(cfg.output_dir, "sft", cfg)
        save_metrics(cfg.output_dir, metrics, history)
    return metrics
