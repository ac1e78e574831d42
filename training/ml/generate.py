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
from training.ml.data import load_rows, prompt_id
from training.ml.errors import ConfigError, DatasetError, TrainingCancelled
from training.ml.progress import Reporter
from training.ml.render import Renderer, Text, stop_token_ids
from training.ml.rollout import left_pad, response_content, sample
from training.ml.runtime import load_causal_lm, load_generation_config, load_tokenizer, seed_everything

COMPLETIONS = "completions.jsonl"


def want_vllm(choice: str) -> bool:
    available = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if choice == "yes" and not available:
        raise ConfigError("use_vllm=yes but vLLM is not installed or no GPU is visible; use use_vllm=auto")
    if choice not in {"auto", "yes", "no"}:
        raise ConfigError(f"use_vllm must be auto, yes or no, got {choice!r}")
    return choice != "no" and available


class HFSampler:
    """Batched sampling with transformers: left-padded prompts, K samples each, drawn from
    softmax(logits / temperature) within top_p and nothing else (the checkpoint's generation_config
    sampling settings do not apply: the labelers see what the config asked for)."""

    def __init__(self, cfg: GenerateConfig) -> None:
        self.cfg = cfg
        self.tokenizer = load_tokenizer(cfg.model)
        self.renderer = Renderer.for_tokenizer(self.tokenizer, cfg.prompt_template, cfg.chat_template)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        precision = "bf16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "no"
        model = load_causal_lm(cfg.model, trainable=False, precision=precision)
        self.model = model.to(self.device)
        self.stop_ids = stop_token_ids(self.tokenizer, model.generation_config)

    @torch.no_grad()
    def __call__(self, prompts: list[Text]) -> list[list[str]]:
        cfg, tok = self.cfg, self.tokenizer
        ids = [self.renderer.prompt_ids(p, cfg.max_prompt_length) for p in prompts]
        query, mask = (t.to(self.device) for t in left_pad(ids, tok.pad_token_id))  # (B, P)
        response, response_mask = sample(
            self.model,
            query,
            mask,
            cfg.max_new_tokens,
            cfg.temperature,
            tok.pad_token_id,
            self.stop_ids,
            top_p=cfg.top_p,
            num_return_sequences=cfg.num_samples,
        )  # (B*K, R)
        _, decoded = response_content(tok, response, response_mask, self.stop_ids)
        k = cfg.num_samples
        return [decoded[i * k : (i + 1) * k] for i in range(len(prompts))]


class VLLMSampler:
    """Sampling with vLLM (continuous batching, paged attention): much faster on a GPU. It is given the
    prompts' token ids, rendered as everywhere else (vLLM would add a second BOS to chat text)."""

    def __init__(self, cfg: GenerateConfig) -> None:
        from vllm import LLM, SamplingParams

        self.cfg = cfg
        self.llm = LLM(model=cfg.model, seed=cfg.seed)
        tokenizer = load_tokenizer(cfg.model)
        self.renderer = Renderer.for_tokenizer(tokenizer, cfg.prompt_template, cfg.chat_template)
        self.params = SamplingParams(
            n=cfg.num_samples,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_tokens=cfg.max_new_tokens,
            stop_token_ids=stop_token_ids(tokenizer, load_generation_config(cfg.model)),
        )

    def __call__(self, prompts: list[Text]) -> list[list[str]]:
        inputs = [
            {"prompt_token_ids": self.renderer.prompt_ids(p, self.cfg.max_prompt_length)} for p in prompts
        ]
        return [[o.text for o in result.outputs] for result in self.llm.generate(inputs, self.params)]


def completed_lines(path: Path) -> int:
    """Lines a previous run finished; a last line cut short by a kill is removed, so its prompts are
    sampled again instead of being counted as done."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        path.write_bytes(keep)
    return sum(1 for line in keep.decode("utf-8").splitlines() if line.strip())


def run_generate(cfg: GenerateConfig, reporter: Reporter) -> dict[str, Any]:
    seed_everything(cfg.seed)
    rows = load_rows(cfg.dataset, splits=cfg.splits)
    if "prompt" not in rows[0]:
        raise DatasetError(f"{cfg.dataset} rows have no 'prompt' field")
    if cfg.split:
        rows = [r for r in rows if r["split"] == cfg.split]
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / COMPLETIONS
    if not cfg.resume:
        path.unlink(missing_ok=True)
    done = completed_lines(path)
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
            samples = sampler([r["prompt"] for r in part])
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
