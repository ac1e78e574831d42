"""Stage 1, supervised fine-tuning on demonstrations with TRL's SFTTrainer (loss on completion tokens only)."""

from __future__ import annotations

from typing import Any

from training.ml.callbacks import stage_callbacks
from training.ml.checkpoints import last_checkpoint, save_config, save_metrics
from training.ml.config import SFTConfig
from training.ml.data import format_prompt, load_rows, train_valid
from training.ml.progress import Reporter
from training.ml.runtime import load_causal_lm, load_tokenizer, seed_everything, trainer_arguments


def sft_dataset(rows: list[dict[str, Any]], template: str):
    """TRL's prompt-completion format: the completion-only loss comes from it."""
    from datasets import Dataset

    return Dataset.from_list(
        [{"prompt": format_prompt(template, r["prompt"]), "completion": r["completion"]} for r in rows]
    )


def _last_eval_loss(history: list[dict[str, Any]]) -> float | None:
    losses = [row["eval_loss"] for row in history if "eval_loss" in row]
    return losses[-1] if losses else None


def run_sft(cfg: SFTConfig, reporter: Reporter) -> dict[str, Any]:
    import trl

    seed_everything(cfg.seed)
    train_rows, valid_rows = train_valid(load_rows(cfg.dataset, allowed=("sft",)), cfg.valid_fraction)
    reporter.log(
        f"sft: {len(train_rows)} train and {len(valid_rows)} valid demonstrations from {cfg.dataset}"
    )
    tokenizer = load_tokenizer(cfg.model)
    model = load_causal_lm(cfg.model)
    args = trl.SFTConfig(
        **trainer_arguments(
            cfg,
            max_length=cfg.max_length,
            completion_only_loss=True,
            packing=False,
            eval_strategy="epoch" if valid_rows else "no",
        )
    )
    callback, callbacks = stage_callbacks("sft", cfg, reporter)
    trainer = trl.SFTTrainer(
        model=model,
        args=args,
        train_dataset=sft_dataset(train_rows, cfg.prompt_template),
        eval_dataset=sft_dataset(valid_rows, cfg.prompt_template) if valid_rows else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    resume_from = last_checkpoint(cfg.output_dir) if cfg.resume else None
    if resume_from:
        reporter.log(f"resuming from {resume_from}")
    metrics: dict[str, Any] = {"train_rows": len(train_rows), "valid_rows": len(valid_rows)}
    if valid_rows and resume_from is None:
        metrics["eval_loss_start"] = trainer.evaluate()["eval_loss"]
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    callback.raise_if_cancelled(cfg.output_dir)
    history = trainer.state.log_history
    if valid_rows:
        final = _last_eval_loss(history)
        metrics["eval_loss"] = final if final is not None else trainer.evaluate()["eval_loss"]
    metrics.update(
        train_loss=result.training_loss,
        steps=trainer.state.global_step,
        epochs=trainer.state.epoch,
        train_runtime=result.metrics.get("train_runtime"),
    )
    trainer.save_model(cfg.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(cfg.output_dir)
        save_config(cfg.output_dir, "sft", cfg)
        save_metrics(cfg.output_dir, metrics, history)
    return metrics
