"""Stage 3, PPO with a KL penalty to the SFT model (InstructGPT recipe), on accelerate.

Each iteration: sample batch_size responses (temperature 1), score them with the frozen reward model,
shape per-token rewards -beta * KL with the score at the last token, GAE (gamma 1, lambda 0.95),
whitened advantages, then ppo_epochs passes of clipped policy and value losses over minibatches, with
optional PPO-ptx (ptx_coef * language-model loss on SFT/pretraining text) in every micro-batch.
Checkpoints checkpoint-<step>/ every save_steps; a restart with the same output_dir resumes.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from training.ml.checkpoints import (
    checkpoint_step,
    last_checkpoint,
    prune_checkpoints,
    save_config,
    save_metrics,
    save_model_folder,
)
from training.ml.config import PPOConfig
from training.ml.data import format_prompt, load_rows
from training.ml.errors import DatasetError, TrainingCancelled
from training.ml.ppo_models import (
    KLController,
    RewardFn,
    RewardScorer,
    ValueModel,
    WeightEMA,
    freeze,
)
from training.ml.progress import Reporter, format_metrics
from training.ml.reward_model import encode
from training.ml.rollout import (
    Episodes,
    entropy_of,
    gae,
    kl_rewards,
    left_pad,
    logprobs_of,
    masked_mean,
    response_logits,
    response_values,
    sample,
    whiten,
)
from training.ml.runtime import (
    disable_dropout,
    load_causal_lm,
    load_scalar_model,
    load_tokenizer,
    position_ids,
    position_limit,
    resolve_precision,
    seed_everything,
)

STATE = "ppo_state.json"


def episode_indices(n: int, step: int, batch: int, seed: int, rank: int = 0, world: int = 1) -> list[int]:
    """Prompt indices of one iteration: a fresh seeded permutation per pass, so a resume picks up exactly."""

    @lru_cache(maxsize=4)
    def permutation(epoch: int) -> np.ndarray:
        return np.random.RandomState(seed + epoch).permutation(n)

    first = (step * world + rank) * batch
    return [int(permutation(g // n)[g % n]) for g in range(first, first + batch)]


class PPOTrainer:
    """Owns the models, the optimizer and one iteration of rollout + update."""

    def __init__(self, cfg: PPOConfig, reporter: Reporter, reward_fn: RewardFn | None = None) -> None:
        from accelerate import Accelerator

        self.cfg, self.reporter = cfg, reporter
        self.accelerator = Accelerator(mixed_precision=resolve_precision(cfg.mixed_precision))
        self.tokenizer = load_tokenizer(cfg.model)
        self.pad_id, self.eos_id = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        device = self.accelerator.device
        policy = load_causal_lm(cfg.model)
        self.ref = freeze(load_causal_lm(cfg.model)).to(device)
        if reward_fn is not None:
            self.scorer = RewardScorer(fn=reward_fn)
        elif cfg.reward_model:
            rm_tokenizer = load_tokenizer(cfg.reward_model)
            rm = freeze(load_scalar_model(cfg.reward_model, rm_tokenizer.pad_token_id)).to(device)
            same = rm_tokenizer.get_vocab() == self.tokenizer.get_vocab()
            self.scorer = RewardScorer(
                rm, rm_tokenizer, same_tokenizer=same, max_length=position_limit(cfg.reward_model) or 1024
            )
        else:
            self.scorer = RewardScorer()  # raises: no reward given
        value_init = cfg.value_model or cfg.reward_model or cfg.model
        value = ValueModel(load_scalar_model(value_init, self.pad_id))
        for model in (policy, value):
            disable_dropout(model)
        self.ema = WeightEMA(policy, cfg.ema_decay) if cfg.ema_decay > 0 else None
        groups = [
            {"params": [p for p in policy.parameters() if p.requires_grad], "lr": cfg.learning_rate},
            {
                "params": [p for p in value.parameters() if p.requires_grad],
                "lr": cfg.value_learning_rate or cfg.learning_rate,
            },
        ]
        optimizer = torch.optim.AdamW(groups, eps=1e-5)
        self.policy, self.value, self.optimizer = self.accelerator.prepare(policy, value, optimizer)
        self.kl = KLController(cfg.kl_coef, cfg.adaptive_kl, cfg.kl_target, cfg.kl_horizon)
        self.prompts = self._rows(cfg.dataset, "prompt")
        self.ptx = self._ptx_texts() if cfg.ptx_dataset else []
        self.history: list[dict[str, Any]] = []
        self.step = 0

    def _rows(self, path: str, what: str) -> list[dict[str, Any]]:
        rows = [r for r in load_rows(path) if r["split"] == "train"]
        if not rows or "prompt" not in rows[0]:
            raise DatasetError(f"{path} has no train rows with a 'prompt' field: ppo needs {what}s")
        return rows

    def _ptx_texts(self) -> list[str]:
        rows = [r for r in load_rows(self.cfg.ptx_dataset, allowed=("sft", "text")) if r["split"] == "train"]
        eos = self.tokenizer.eos_token or ""
        return [
            r["text"]
            if "text" in r
            else format_prompt(self.cfg.prompt_template, r["prompt"]) + r["completion"] + eos
            for r in rows
        ]

    # ---- rollout -------------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, rows: list[dict[str, Any]]) -> tuple[Episodes, dict[str, float]]:
        cfg, acc = self.cfg, self.accelerator
        texts = [format_prompt(cfg.prompt_template, r["prompt"]) for r in rows]
        ids = [seq[-cfg.max_prompt_length :] for seq in self.tokenizer(texts)["input_ids"]]
        query, query_mask = (t.to(acc.device) for t in left_pad(ids, self.pad_id))  # (B, P)
        policy = acc.unwrap_model(self.policy)
        policy.eval()
        timings = {"time/generate": 0.0, "time/score": 0.0}
        parts: list[Episodes] = []
        chunk = cfg.generation_batch_size or cfg.mini_batch_size
        for start in range(0, len(rows), chunk):
            t0 = time.perf_counter()
            q, qm = query[start : start + chunk], query_mask[start : start + chunk]
            with acc.autocast():
                response, rmask = sample(
                    policy, q, qm, cfg.max_new_tokens, cfg.temperature, self.pad_id, self.eos_id
                )
            t1 = time.perf_counter()
            response = torch.nn.functional.pad(
                response, (0, cfg.max_new_tokens - response.shape[1]), value=self.pad_id
            )
            rmask = torch.nn.functional.pad(rmask, (0, cfg.max_new_tokens - rmask.shape[1]), value=0)
            empty = torch.zeros(len(q), cfg.max_new_tokens, device=acc.device)
            ep = Episodes(q, qm, response, rmask, empty, empty, empty, empty[:, 0])
            with acc.autocast():
                ep.logprobs = logprobs_of(response_logits(policy, ep, cfg.temperature), response)
                ep.ref_logprobs = logprobs_of(response_logits(self.ref, ep, cfg.temperature), response)
                ep.values = response_values(self.value, ep).float()
                ep.scores = self._score(ep, rows[start : start + chunk]).float()
            timings["time/score"] += time.perf_counter() - t1
            timings["time/generate"] += t1 - t0
            parts.append(ep)
        width = max(int(p.response_mask.sum(1).max()) for p in parts)  # trim the common padding
        ep = Episodes(
            *(
                torch.cat([getattr(p, name) for p in parts])
                for name in (
                    "query",
                    "query_mask",
                    "response",
                    "response_mask",
                    "logprobs",
                    "ref_logprobs",
                    "values",
                    "scores",
                )
            )
        )
        for name in ("response", "response_mask", "logprobs", "ref_logprobs", "values"):
            setattr(ep, name, getattr(ep, name)[:, :width])
        return ep, timings

    def _score(self, ep: Episodes, rows: list[dict[str, Any]]) -> torch.Tensor:
        ids, mask = ep.full
        no_eos = ep.response_mask * (ep.response != self.eos_id)
        mask = torch.cat([ep.query_mask, no_eos], 1)  # the score is read at the last real token
        responses = self.tokenizer.batch_decode(
            ep.response.masked_fill(no_eos == 0, self.pad_id), skip_special_tokens=True
        )
        scores = self.scorer(ids, mask, [r["prompt"] for r in rows], responses)
        if self.cfg.missing_eos_penalty is not None:
            ended = ((ep.response == self.eos_id) & (ep.response_mask == 1)).any(1)
            scores = scores - self.cfg.missing_eos_penalty * (~ended).float()
        return scores

    # ---- update --------------------------------------------------------------------------------
    def micro_loss(self, mb: Episodes) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.cfg
        mask = mb.response_mask.float()
        logits = response_logits(self.policy, mb, cfg.temperature)  # (b, R, V)
        logprobs = logprobs_of(logits, mb.response)  # (b, R)
        log_ratio = (logprobs - mb.logprobs) * mask
        ratio = torch.exp(log_ratio)
        pg1 = -mb.advantages * ratio
        pg2 = -mb.advantages * torch.clamp(ratio, 1 - cfg.cliprange, 1 + cfg.cliprange)
        pg_loss = masked_mean(torch.max(pg1, pg2), mask)
        vpred = response_values(self.value, mb)  # (b, R)
        vclipped = mb.values + torch.clamp(vpred - mb.values, -cfg.cliprange_value, cfg.cliprange_value)
        vf_loss = 0.5 * masked_mean(torch.max((vpred - mb.returns) ** 2, (vclipped - mb.returns) ** 2), mask)
        loss = pg_loss + cfg.vf_coef * vf_loss
        stats = {
            "policy_loss": pg_loss.detach(),
            "value_loss": vf_loss.detach(),
            "clip_frac": masked_mean((pg2 > pg1).float(), mask),
            "approx_kl": masked_mean(0.5 * log_ratio.detach() ** 2, mask),
            "entropy": masked_mean(entropy_of(logits.detach()), mask),
        }
        return loss, stats

    def ptx_loss(self, texts: list[str]) -> torch.Tensor:
        """Mean token negative log-likelihood of pretraining/SFT text (PPO-ptx)."""
        ids, attn = encode(self.tokenizer, texts, self.cfg.max_prompt_length + self.cfg.max_new_tokens)
        ids, attn = ids.to(self.accelerator.device), attn.to(self.accelerator.device)  # (b, T)
        labels = ids.masked_fill(attn == 0, -100)
        return self.policy(
            input_ids=ids, attention_mask=attn, position_ids=position_ids(attn), labels=labels
        ).loss

    def train_step(self) -> dict[str, float]:
        cfg, acc = self.cfg, self.accelerator
        rows = [
            self.prompts[i]
            for i in episode_indices(
                len(self.prompts), self.step, cfg.batch_size, cfg.seed, acc.process_index, acc.num_processes
            )
        ]
        ep, timings = self.rollout(rows)
        ep.rewards, kl = kl_rewards(ep, self.kl.value)
        advantages, ep.returns = gae(ep.rewards, ep.values, ep.response_mask, cfg.gamma, cfg.lam)
        ep.advantages = whiten(advantages, ep.response_mask.float())

        t0 = time.perf_counter()
        self.policy.train()
        self.value.train()
        micro_per_mini = cfg.mini_batch_size // cfg.micro_batch_size
        totals: dict[str, float] = {}
        count = 0
        generator = torch.Generator().manual_seed(cfg.seed * 100_003 + self.step)
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(cfg.batch_size, generator=generator).to(acc.device)
            for start in range(0, cfg.batch_size, cfg.mini_batch_size):
                for micro in range(micro_per_mini):
                    lo = start + micro * cfg.micro_batch_size
                    index = order[lo : lo + cfg.micro_batch_size]
                    loss, stats = self.micro_loss(ep.select(index))
                    acc.backward(loss / micro_per_mini)
                    if self.ptx:  # a separate backward: DDP allows one forward per backward
                        ptx_loss = self.ptx_loss(self._ptx_batch(count))
                        acc.backward(cfg.ptx_coef * ptx_loss / micro_per_mini)
                        stats["ptx_loss"] = ptx_loss.detach()
                    for key, value in stats.items():
                        totals[key] = totals.get(key, 0.0) + float(value)
                    count += 1
                acc.clip_grad_norm_(
                    list(self.policy.parameters()) + list(self.value.parameters()), cfg.max_grad_norm
                )
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                if self.ema is not None:
                    self.ema.update(acc.unwrap_model(self.policy))
        timings["time/update"] = time.perf_counter() - t0

        mean_kl = kl.sum(1).mean().item()
        self.kl.update(mean_kl, cfg.batch_size * acc.num_processes)
        metrics = {k: v / max(count, 1) for k, v in totals.items()}
        metrics.update(
            reward=ep.scores.mean().item(),
            kl=mean_kl,
            response_length=ep.response_mask.sum(1).float().mean().item(),
            beta=self.kl.value,
            **timings,
        )
        return metrics

    def _ptx_batch(self, index: int) -> list[str]:
        if not self.ptx:
            return []
        size = self.cfg.ptx_batch_size
        first = (self.step * 10_007 + index) * size
        return [self.ptx[(first + i) % len(self.ptx)] for i in range(size)]

    # ---- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        path = Path(self.cfg.output_dir) / f"checkpoint-{self.step}"
        self.accelerator.save_state(str(path))
        if self.accelerator.is_main_process:
            state = {"step": self.step, "kl_coef": self.kl.value, "history": self.history}
            (path / STATE).write_text(json.dumps(state))
            save_config(path, "ppo", self.cfg)
            if self.ema is not None:
                torch.save(self.ema.state_dict(), path / "ema.pt")
            prune_checkpoints(self.cfg.output_dir, self.cfg.save_total_limit)
        self.accelerator.wait_for_everyone()

    def load_checkpoint(self, path: Path) -> None:
        self.accelerator.load_state(str(path))
        state = json.loads((path / STATE).read_text())
        self.step, self.kl.value, self.history = checkpoint_step(path), state["kl_coef"], state["history"]
        if self.ema is not None and (path / "ema.pt").exists():
            self.ema.load_state_dict(torch.load(path / "ema.pt", map_location="cpu"))
        self.reporter.log(f"ppo: resumed from {path} at step {self.step}")

    def save_final(self) -> None:
        policy = self.accelerator.unwrap_model(self.policy)
        if self.ema is not None:
            self.ema.copy_to(policy)
        if self.accelerator.is_main_process:
            save_model_folder(self.cfg.output_dir, policy, self.tokenizer)


def run_ppo(cfg: PPOConfig, reporter: Reporter, reward_fn: RewardFn | None = None) -> dict[str, Any]:
    seed_everything(cfg.seed)
    trainer = PPOTrainer(cfg, reporter, reward_fn)
    resume_from = last_checkpoint(cfg.output_dir) if cfg.resume else None
    if resume_from is not None and (resume_from / STATE).exists():
        trainer.load_checkpoint(resume_from)
    reporter.log(
        f"ppo: {len(trainer.prompts)} train prompts, {len(trainer.ptx)} ptx texts, steps {trainer.step}..{cfg.steps}"
    )
    bar = tqdm(
        total=cfg.steps, initial=trainer.step, desc="ppo", disable=not (cfg.progress_bar and reporter.is_main)
    )
    while trainer.step < cfg.steps:
        metrics = trainer.train_step()
        trainer.step += 1
        trainer.history.append({"step": trainer.step, **metrics})
        line = f"ppo step {trainer.step}/{cfg.steps} {format_metrics(metrics)}"
        bar.update(1)
        bar.set_postfix(reward=f"{metrics['reward']:.3f}", kl=f"{metrics['kl']:.3f}")
        reporter.update(trainer.step, cfg.steps, metrics, line)
        stop = reporter.stop_requested()
        if stop or trainer.step % cfg.save_steps == 0 or trainer.step == cfg.steps:
            trainer.save_checkpoint()
        if stop:
            bar.close()
            raise TrainingCancelled(trainer.step, cfg.output_dir)
    bar.close()
    trainer.save_final()
    history = trainer.history
    final = dict(history[-1]) if history else {}
    final.pop("step", None)
    final.update(
        steps=trainer.step, episodes=trainer.step * cfg.batch_size * trainer.accelerator.num_processes
    )
    if history:
        final["reward_first"] = history[0]["reward"]
    if trainer.accelerator.is_main_process:
        save_config(cfg.output_dir, "ppo", cfg, {"kl_coef_final": trainer.kl.value})
        save_metrics(cfg.output_dir, final, history)
    return final
