"""Sample K completions per prompt from a model folder, for the next ranking batch.

Writes OUT/completions.jsonl, one line per prompt:
    {"prompt": text, "prompt_id": id or null, "completions": [K strings], "model": name}
Lines are flushed batch by batch, so a restart with the same output_dir skips prompts already done.
vLLM is used when importable and a GPU is present (use_vllm='auto'), else transformers' generate.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from training.ml.checkpoints import save_config, save_metrics
from training.ml.config import GenerateConfig
from training.ml.data import format_prompt, load_rows, prompt_id
from training.ml.errors import ConfigError, DatasetError, TrainingCancelled
from training.ml.progress import Reporter
from training.ml.rollout import left_pad, response_mask
from training.ml.runtime import load_causal_lm, load_tokenizer, seed_everything

COMPLETIONS = "completions.jsonl"


def want_vllm(choice: str) -> bool:
    available = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if choice == "yes" and not available:
        raise ConfigError("use_vllm=yes but vLLM is not installed or no GPU is visible; use use_vllm=auto")
    if choice not in {"auto", "yes", "no"}:
        raise ConfigError(f"use_vllm must be auto, yes or no, got {choice!r}")
    return choice != "no" and available


class HFSampler:
    """Batched sampling with transformers: left-padded prompts, K samples each."""

    def __init__(self, cfg: GenerateConfig) -> None:
        self.cfg = cfg
        self.tokenizer = load_tokenizer(cfg.model)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else None
        self.model = load_causal_lm(cfg.model, dtype=dtype).to(self.device).eval()

    @torch.no_grad()
    def __call__(self, texts: list[str]) -> list[list[str]]:
        from transformers import GenerationConfig

        cfg, tok = self.cfg, self.tokenizer
        ids = [seq[-cfg.max_prompt_length :] for seq in tok(texts)["input_ids"]]
        query, mask = (t.to(self.device) for t in left_pad(ids, tok.pad_token_id))  # (B, P)
        config = GenerationConfig(
            do_sample=True,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            top_k=0,
            max_new_tokens=cfg.max_new_tokens,
            num_return_sequences=cfg.num_samples,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
        )
        out = self.model.generate(
            input_ids=query, attention_mask=mask, generation_config=config
        )  # (B*K, P+R)
        response = out[:, query.shape[1] :]
        response = response.masked_fill(response_mask(response, tok.eos_token_id) == 0, tok.pad_token_id)
        decoded = tok.batch_decode(response, skip_special_tokens=True)
        k = cfg.num_samples
        return [decoded[i * k : (i + 1) * k] for i in range(len(texts))]


class VLLMSampler:
    """Sampling with vLLM (continuous batching, paged attention): much faster on a GPU."""

    def __init__(self, cfg: GenerateConfig) -> None:
        from vllm import LLM, SamplingParams

        self.llm = LLM(model=cfg.model, seed=cfg.seed)
        self.params = SamplingParams(
            n=cfg.num_samples,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_tokens=cfg.max_new_tokens,
            truncate_prompt_tokens=cfg.max_prompt_length,
        )

    def __call__(self, texts: list[str]) -> list[list[str]]:
        return [[o.text for o in result.outputs] for result in self.llm.generate(texts, self.params)]


def run_generate(cfg: GenerateConfig, reporter: Reporter) -> dict[str, Any]:
    seed_everything(cfg.seed)
    rows = load_rows(cfg.dataset)
    if "prompt" not in rows[0]:
        raise DatasetError(f"{cfg.dataset} rows have no 'prompt' field")
    if cfg.split:
        rows = [r for r in rows if r["split"] == cfg.split]
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / COMPLETIONS
    done = 0
    if cfg.resume and path.exists():
        done = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    elif path.exists():
        path.unlink()
    use_vllm = want_vllm(cfg.use_vllm)
    sampler = VLLMSampler(cfg) if use_vllm else HFSampler(cfg)
    name = cfg.model_name or Path(cfg.model.rstrip("/")).name
    batch = len(rows) if use_vllm else cfg.batch_size  # vLLM schedules the whole set itself
    reporter.log(
        f"generate: {len(rows)} prompts ({done} already done), {cfg.num_samples} samples each, "
        f"{'vLLM' if use_vllm else 'transformers'}"
    )
    total = -(-len(rows) // batch) if rows else 0
    bar = tqdm(total=len(rows), initial=done, desc="generate", disable=not cfg.progress_bar)
    with path.open("a", encoding="utf-8") as handle:
        for start in range(done, len(rows), batch):
            part = rows[start : start + batch]
            samples = sampler([format_prompt(cfg.prompt_template, r["prompt"]) for r in part])
            for row, completions in zip(part, samples, strict=True):
                line = {
                    "prompt": row["prompt"],
                    "prompt_id": prompt_id(row),
                    "completions": completions,
                    "model": name,
                }
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            handle.flush()
            bar.update(len(part))
            step = start // batch + 1
            reporter.update(
                step, total, {"prompts": start + len(part)}, f"generated {start + len(part)}/{len(rows)}"
            )
            if reporter.stop_requested() and start + batch < len(rows):
                raise TrainingCancelled(step, cfg.output_dir)
    bar.close()
    metrics = {
        "prompts": len(rows),
        "samples_per_prompt": cfg.num_samples,
        "completions_file": str(path),
        "backend": "vllm" if use_vllm else "transformers",
    }
    save_config(out, "generate", cfg)
    save_metrics(out, metrics)
    return metrics
