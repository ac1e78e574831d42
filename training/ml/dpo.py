"""Stage 3 (alternative), direct preference optimisation on pairs with TRL's DPOTrainer.

The reference model is loaded from a folder on disk (the starting model unless ref_model is given):
TRL reloads the reference by path, which fails for a model that was never saved.
"""

from __future__ import annotations

from typing import Any

import torch

from training.ml.callbacks import stage_callbacks
from training.ml.checkpoints import last_checkpoint, save_config, save_metrics
from training.ml.config import DPOConfig
from training.ml.data import as_pairs, format_prompt, load_rows, train_valid
from training.ml.errors import DatasetError
from training.ml.progress import Reporter
from training.ml.reward_model import pad_right
from training.ml.runtime import load_causal_lm, load_tokenizer, seed_everything, trainer_arguments


@torch.no_grad()
def completion_logprobs(
    model: Any, tokenizer: Any, prompts: list[str], completions: list[str], batch_size: int = 16
) -> torch.Tensor:
    """Summed log-probability of each completion given its (formatted) prompt. -> (N,) on the CPU"""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(prompts), batch_size):
        seqs, starts = [], []
        for prompt, completion in zip(
            prompts[start : start + batch_size], completions[start : start + batch_size], strict=True
        ):
            prompt_ids = tokenizer(prompt)["input_ids"]
            seqs.append(prompt_ids + tokenizer(completion, add_special_tokens=False)["input_ids"])
            starts.append(len(prompt_ids))
        ids, mask = pad_right(seqs, tokenizer.pad_token_id)  # (b, T)
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


def chosen_margin(model: Any, tokenizer: Any, pairs: list[dict[str, str]], batch_size: int) -> float:
    """Mean of log p(chosen) - log p(rejected) over pairs."""
    prompts = [p["prompt"] for p in pairs]
    chosen = completion_logprobs(model, tokenizer, prompts, [p["chosen"] for p in pairs], batch_size)
    rejected = completion_logprobs(model, tokenizer, prompts, [p["rejected"] for p in pairs], batch_size)
    return (chosen - rejected).mean().item()


def run_dpo(cfg: DPOConfig, reporter: Reporter) -> dict[str, Any]:
    import trl
    from datasets import Dataset

    seed_everything(cfg.seed)
    if cfg.dataset_format not in {"auto", "rm_pairs", "rm_rankings"}:
        raise DatasetError(f"the dpo stage reads rm_pairs or rm_rankings files, not {cfg.dataset_format!r}")
    rows = load_rows(cfg.dataset, cfg.dataset_format, allowed=("rm_pairs", "rm_rankings"))
    train_rows, valid_rows = train_valid(rows, cfg.valid_fraction)

    def pairs_of(part: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [{**p, "prompt": format_prompt(cfg.prompt_template, p["prompt"])} for p in as_pairs(part)]

    train, valid = pairs_of(train_rows), pairs_of(valid_rows)
    if not train:
        raise DatasetError(f"{cfg.dataset} has no non-tied pairs in its train split")
    reporter.log(f"dpo: {len(train)} train and {len(valid)} valid pairs from {cfg.dataset}")
    tokenizer = load_tokenizer(cfg.model)
    model = load_causal_lm(cfg.model)
    ref_model = load_causal_lm(cfg.ref_model or cfg.model)
    args = trl.DPOConfig(
        **trainer_arguments(
            cfg, beta=cfg.beta, max_length=cfg.max_length, eval_strategy="epoch" if valid else "no"
        )
    )
    callback, callbacks = stage_callbacks("dpo", cfg, reporter)
    trainer = trl.DPOTrainer(
        model=model,
        ref_model=ref_model,
        args=args,
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(valid) if valid else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    resume_from = last_checkpoint(cfg.output_dir) if cfg.resume else None
    if resume_from:
        reporter.log(f"resuming from {resume_from}")
    batch = cfg.per_device_eval_batch_size
    probe = valid or train
    metrics: dict[str, Any] = {"train_pairs": len(train), "valid_pairs": len(valid)}
    if resume_from is None:
        metrics["margin_start"] = chosen_margin(model, tokenizer, probe, batch)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    callback.raise_if_cancelled(cfg.output_dir)
    metrics.update(
        margin=chosen_margin(trainer.accelerator.unwrap_model(trainer.model), tokenizer, probe, batch),
        train_loss=result.training_loss,
        steps=trainer.state.global_step,
        epochs=trainer.state.epoch,
        train_runtime=result.metrics.get("train_runtime"),
    )
    trainer.save_model(cfg.output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(cfg.output_dir)
        save_config(cfg.output_dir, "dpo", cfg)
        save_metrics(cfg.output_dir, metrics, trainer.state.log_history)
    return metrics
