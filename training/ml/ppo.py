"""Stage 3, PPO with a KL penalty to the SFT model (InstructGPT recipe), on accelerate.

Each iteration: sample batch_size responses (temperature 1), score them with the frozen reward model,
shape per-token rewards -beta * KL with the score at the last token, GAE (gamma 1, lambda 0.95),
whitened advantages, then ppo_epochs passes of clipped policy and value losses over minibatches, with
optional PPO-ptx (ptx.py) in every micro-batch. Checkpoints checkpoint-<step>/ every save_steps; a
restart with the same output_dir resumes.

Where we follow and where we differ (TRL's last PPOTrainer, OpenRLHF, DeepSpeed-Chat):
- Separate policy and value models, value initialised from the reward model (paper, DeepSpeed-Chat),
  from the policy when the reward model has another tokenizer (it could not read the policy's ids).
- Rollouts sample from softmax(logits / T) alone: the checkpoint's generation_config is set aside
  (rollout.plain_generation_config), as the ratio and the KL assume.
- AdamW with weight_decay from the config (0 by default, like TRL's PPO; torch's default is 0.01) and
  one clip per model (OpenRLHF clips actor and critic apart).
- Per-rank sampling seeds; the KL controller, the stop decision and the logged figures are averaged or
  agreed over ranks (ranks.py).
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
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
from training.ml.data import load_rows, train_valid
from training.ml.errors import ConfigError, DatasetError, TrainingCancelled
from training.ml.ppo_models import KLController, RewardFn, RewardScorer, ValueModel, WeightEMA
from training.ml.progress import Reporter, format_metrics
from training.ml.ptx import GradNorm, ptx_sequences
from training.ml.ranks import any_rank, mean_over_ranks
from training.ml.render import Renderer, stop_token_ids
from training.ml.reward_model import pad_right, reward_bias
from training.ml.rollout import (
    Episodes,
    entropy_of,
    gae,
    kl_rewards,
    left_pad,
    logprobs_of,
    masked_mean,
    response_content,
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
    refuse_half_trainables,
    resolve_precision,
    seed_everything,
    to_checkpoint_dtype,
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
        precision = resolve_precision(cfg.mixed_precision)
        self.accelerator = acc = Accelerator(mixed_precision=precision)
        self.tokenizer = load_tokenizer(cfg.model)
        self.renderer = Renderer.for_tokenizer(self.tokenizer, cfg.prompt_template, cfg.chat_template)
        self.pad_id = self.tokenizer.pad_token_id
        policy = load_causal_lm(cfg.model, trainable=True)
        self.stop_ids = stop_token_ids(self.tokenizer, policy.generation_config)
        self.ref = load_causal_lm(cfg.model, trainable=False, precision=precision).to(acc.device)
        if reward_fn is not None:
            self.scorer = RewardScorer(fn=reward_fn)
        elif cfg.reward_model:
            self.scorer = RewardScorer.from_folder(
                cfg.reward_model, self.renderer, precision=precision, device=acc.device, reporter=reporter
            )
        else:
            self.scorer = RewardScorer()  # raises: no reward given
        value = self._value_model()
        for model in (policy, value):
            disable_dropout(model)
            refuse_half_trainables(model, engine_keeps_master=acc.state.deepspeed_plugin is not None)
        groups = [
            {"params": [p for p in policy.parameters() if p.requires_grad], "lr": cfg.learning_rate},
            {
                "params": [p for p in value.parameters() if p.requires_grad],
                "lr": cfg.value_learning_rate or cfg.learning_rate,
            },
        ]
        optimizer = torch.optim.AdamW(groups, eps=1e-5, weight_decay=cfg.weight_decay)
        self.policy, self.value, self.optimizer = acc.prepare(policy, value, optimizer)
        torch.manual_seed(cfg.seed + acc.process_index)  # each rank samples its own responses
        self.ema = WeightEMA(acc.unwrap_model(self.policy), cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.kl = KLController(cfg.kl_coef, cfg.adaptive_kl, cfg.kl_target, cfg.kl_horizon)
        self.prompts, self.valid_prompts = self._prompts()
        length = cfg.max_prompt_length + cfg.max_new_tokens
        self.ptx = (
            ptx_sequences(cfg.ptx_dataset, self.renderer, length, cfg.splits)
            if cfg.ptx_dataset and cfg.ptx_coef > 0
            else []  # a weight of 0 is ptx off: no sequences read, no extra forward and backward
        )
        self.pg_norm = GradNorm(policy.parameters())
        self.history: list[dict[str, Any]] = []
        self.step = 0

    def _value_model(self) -> ValueModel:
        """From value_model if given (it must share the policy's vocabulary: it reads the policy's ids),
        else the reward model with its bias when it shares the vocabulary, else the policy with a new head."""
        cfg, vocab = self.cfg, self.tokenizer.get_vocab()
        if cfg.value_model:
            if load_tokenizer(cfg.value_model).get_vocab() != vocab:
                raise ConfigError(
                    f"value_model {cfg.value_model!r} has another tokenizer than the policy; the value "
                    "model reads the policy's token ids: leave value_model empty to start it from the policy"
                )
            init, bias = cfg.value_model, 0.0
        elif self.scorer.model is not None and self.scorer.tokenizer.get_vocab() == vocab:
            init, bias = cfg.reward_model, reward_bias(self.scorer.model)
        else:
            if cfg.reward_model:
                self.reporter.log(
                    "note: the reward model has another tokenizer; the value model starts from the policy"
                )
            init, bias = cfg.model, 0.0
        return ValueModel(load_scalar_model(init, self.pad_id, trainable=True), bias)

    def _prompts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = load_rows(self.cfg.dataset, splits=self.cfg.splits)
        if "prompt" not in rows[0]:
            raise DatasetError(f"{self.cfg.dataset} rows have no 'prompt' field: ppo needs prompts")
        if self.cfg.eval_steps > 0:
            return train_valid(rows, self.cfg.valid_fraction)
        train = [r for r in rows if r["split"] == "train"]
        if not train:
            raise DatasetError(f"{self.cfg.dataset} has no train rows: ppo needs prompts")
        return train, []

    # ---- rollout -------------------------------------------------------------------------------
    @torch.no_grad()
    def rollout(self, rows: list[dict[str, Any]]) -> tuple[Episodes, dict[str, float]]:
        cfg, acc = self.cfg, self.accelerator
        ids = [self.renderer.prompt_ids(r["prompt"], cfg.max_prompt_length) for r in rows]
        # Unwrapped: a rollout runs no collective (DDP's forward may broadcast buffers), so ranks may
        # sample different numbers of chunks (a held-out evaluation's shares differ by one).
        policy, value = acc.unwrap_model(self.policy), acc.unwrap_model(self.value)
        policy.eval()
        timings = {"time/generate": 0.0, "time/score": 0.0}
        parts: list[Episodes] = []
        chunk = cfg.generation_batch_size or cfg.mini_batch_size
        for start in range(0, len(rows), chunk):
            t0 = time.perf_counter()
            q, qm = (t.to(acc.device) for t in left_pad(ids[start : start + chunk], self.pad_id))  # (b, P)
            with acc.autocast():
                response, rmask = sample(
                    policy, q, qm, cfg.max_new_tokens, cfg.temperature, self.pad_id, self.stop_ids
                )
            t1 = time.perf_counter()
            empty = torch.zeros(len(q), response.shape[1], device=acc.device)
            ep = Episodes(q, qm, response, rmask, empty, empty, empty, empty[:, 0])
            with acc.autocast():
                ep.logprobs = logprobs_of(response_logits(policy, ep, cfg.temperature), response)
                ep.ref_logprobs = logprobs_of(response_logits(self.ref, ep, cfg.temperature), response)
                ep.values = response_values(value, ep).float()
                ep.scores = self._score(ep, rows[start : start + chunk]).float()
            timings["time/score"] += time.perf_counter() - t1
            timings["time/generate"] += t1 - t0
            parts.append(ep)
        return Episodes.concat(parts, self.pad_id), timings

    def _score(self, ep: Episodes, rows: list[dict[str, Any]]) -> torch.Tensor:
        content, responses = response_content(self.tokenizer, ep.response, ep.response_mask, self.stop_ids)
        ids = torch.cat([ep.query, ep.response], 1)
        mask = torch.cat([ep.query_mask, content], 1)  # the score is read at the last real token
        scores = self.scorer(ids, mask, [r["prompt"] for r in rows], responses)
        if self.cfg.missing_eos_penalty is not None:
            ended = (ep.response_mask - content).sum(1) > 0  # a stop token within the response
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
        assert mb.advantages is not None and mb.returns is not None  # the rollout's GAE set them
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

    def ptx_loss(self, sequences: list[list[int]]) -> torch.Tensor:
        """Mean token negative log-likelihood of pretraining/SFT sequences (PPO-ptx)."""
        ids, attn = (t.to(self.accelerator.device) for t in pad_right(sequences, self.pad_id))  # (b, T)
        labels = ids.masked_fill(attn == 0, -100)
        return self.policy(
            input_ids=ids, attention_mask=attn, position_ids=position_ids(attn), labels=labels
        ).loss

    def _sync(self, policy: bool, value: bool) -> ExitStack:
        """Gradient all-reduce only on the last backward of a minibatch (DDP's no_sync elsewhere)."""
        stack = ExitStack()
        for model, sync in ((self.policy, policy), (self.value, value)):
            if not sync:
                stack.enter_context(self.accelerator.no_sync(model))
        return stack

    def train_step(self) -> dict[str, float]:
        cfg, acc = self.cfg, self.accelerator
        indices = episode_indices(
            len(self.prompts), self.step, cfg.batch_size, cfg.seed, acc.process_index, acc.num_processes
        )
        ep, timings = self.rollout([self.prompts[i] for i in indices])
        ep.rewards, kl = kl_rewards(ep, self.kl.value)
        advantages, ep.returns = gae(ep.rewards, ep.values, ep.response_mask, cfg.gamma, cfg.lam)
        ep.advantages = whiten(advantages, ep.response_mask.float())

        t0 = time.perf_counter()
        self.policy.train()
        self.value.train()
        micro_per_mini = cfg.mini_batch_size // cfg.micro_batch_size
        totals: dict[str, float] = {}
        pg_norms: list[float] = []
        ptx_norms: list[float] = []
        count = 0
        generator = torch.Generator().manual_seed(cfg.seed * 100_003 + self.step)
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(cfg.batch_size, generator=generator).to(acc.device)
            for start in range(0, cfg.batch_size, cfg.mini_batch_size):
                for micro in range(micro_per_mini):
                    last = micro == micro_per_mini - 1
                    lo = start + micro * cfg.micro_batch_size
                    with self._sync(policy=last and not self.ptx, value=last):
                        loss, stats = self.micro_loss(ep.select(order[lo : lo + cfg.micro_batch_size]))
                        with self.pg_norm.measure(pg_norms):
                            acc.backward(loss / micro_per_mini)
                    if self.ptx:  # its own backward: DDP allows one forward per backward
                        with self._sync(policy=last, value=True):
                            ptx_loss = self.ptx_loss(self._ptx_batch(count))
                            with self.pg_norm.measure(ptx_norms):
                                acc.backward(cfg.ptx_coef * ptx_loss / micro_per_mini)
                        stats["ptx_loss"] = ptx_loss.detach()
                    for key, value in stats.items():
                        totals[key] = totals.get(key, 0.0) + float(value)
                    count += 1
                self._clip_and_step()
        timings["time/update"] = time.perf_counter() - t0

        metrics = {k: v / max(count, 1) for k, v in totals.items()}
        if ptx_norms:
            ratios = [x / max(g, 1e-12) for x, g in zip(ptx_norms, pg_norms, strict=True)]
            metrics.update(
                {"ptx/grad_ratio": float(np.mean(ratios)), "ptx/grad_norm": float(np.mean(ptx_norms))}
            )
        metrics.update(
            {
                "pg/grad_norm": float(np.mean(pg_norms)),
                "reward": ep.scores.mean().item(),
                "kl": kl.sum(1).mean().item(),
                "response_length": ep.response_mask.sum(1).float().mean().item(),
                **timings,
            }
        )
        metrics = mean_over_ranks(metrics)
        self.kl.update(metrics["kl"], cfg.batch_size * acc.num_processes)
        metrics["beta"] = self.kl.value
        return metrics

    def _clip_and_step(self) -> None:
        cfg, acc = self.cfg, self.accelerator
        acc.clip_grad_norm_(self.policy.parameters(), cfg.max_grad_norm)  # unscales fp16 grads once
        value_clip = cfg.value_max_grad_norm if cfg.value_max_grad_norm is not None else cfg.max_grad_norm
        torch.nn.utils.clip_grad_norm_(self.value.parameters(), value_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(acc.unwrap_model(self.policy))

    def _ptx_batch(self, index: int) -> list[list[int]]:
        size = max(1, round(self.cfg.micro_batch_size * self.cfg.ptx_ratio))
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        first = ((self.step * 10_007 + index) * world + rank) * size
        return [self.ptx[(first + i) % len(self.ptx)] for i in range(size)]

    # ---- held-out evaluation -------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Mean reward and KL per episode of one sample per valid prompt, each rank sampling its share;
        no update."""
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        rows = self.valid_prompts[: self.cfg.eval_prompts][rank::world]
        sums = {"reward": 0.0, "kl": 0.0, "episodes": 0.0}
        if rows:
            ep, _ = self.rollout(rows)
            kl = ((ep.logprobs - ep.ref_logprobs) * ep.response_mask).sum(1)
            sums = {"reward": ep.scores.sum().item(), "kl": kl.sum().item(), "episodes": float(len(rows))}
        world_sums = mean_over_ranks(sums)  # means of sums: the ratio is the mean over every episode
        episodes = world_sums["episodes"] or float("nan")
        return {"eval/reward": world_sums["reward"] / episodes, "eval/kl": world_sums["kl"] / episodes}

    # ---- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        path = Path(self.cfg.output_dir) / f"checkpoint-{self.step}"
        self.accelerator.save_state(str(path))
        self.accelerator.wait_for_everyone()  # every rank's random state is written before the marker
        if self.accelerator.is_main_process:
            if self.ema is not None:
                torch.save(self.ema.state_dict(), path / "ema.pt")
            save_config(path, "ppo", self.cfg)
            state = {"step": self.step, "kl_coef": self.kl.value, "history": self.history}
            (path / STATE).write_text(json.dumps(state))  # last: it marks the checkpoint complete
            prune_checkpoints(self.cfg.output_dir, self.cfg.save_total_limit)
        self.accelerator.wait_for_everyone()

    def load_checkpoint(self, path: Path) -> None:
        self.accelerator.load_state(str(path))
        state = json.loads((path / STATE).read_text())
        self.step, self.kl.value, self.history = checkpoint_step(path), state["kl_coef"], state["history"]
        if self.ema is not None and (path / "ema.pt").exists():
            self.ema.load_state_dict(torch.load(path / "ema.pt", map_location="cpu", weights_only=True))
        self.reporter.log(f"ppo: resumed from {path} at step {self.step}")

    def save_final(self) -> None:
        """The policy (its EMA when on), in the dtype of the checkpoint PPO started from."""
        policy = self.accelerator.unwrap_model(self.policy)
        if self.ema is not None:
            self.ema.copy_to(policy)
        if self.accelerator.is_main_process:
            to_checkpoint_dtype(policy, self.cfg.model)
            save_model_folder(self.cfg.output_dir, policy, self.tokenizer)
        self.accelerator.wait_for_everyone()


def run_ppo(cfg: PPOConfig, reporter: Reporter, reward_fn: RewardFn | None = None) -> dict[str, Any]:
    seed_everything(cfg.seed)
    trainer = PPOTrainer(cfg, reporter, reward_fn)
    resume_from = last_checkpoint(cfg.output_dir) if cfg.resume else None
    if resume_from is not None and (resume_from / STATE).exists():
        trainer.load_checkpoint(resume_from)
    reporter.log(
        f"ppo: {len(trainer.prompts)} train prompts, {len(trainer.valid_prompts)} valid prompts, "
        f"{len(trainer.ptx)} ptx sequences, steps {trainer.step}..{cfg.steps}; prompts rendered with "
        f"{trainer.renderer.describe()}"
    )
    bar = tqdm(
        total=cfg.steps, initial=trainer.step, desc="ppo", disable=not (cfg.progress_bar and reporter.is_main)
    )
    while trainer.step < cfg.steps:
        metrics = trainer.train_step()
        trainer.step += 1
        if cfg.eval_steps > 0 and (trainer.step % cfg.eval_steps == 0 or trainer.step == cfg.steps):
            metrics.update(trainer.evaluate())
        trainer.history.append({"step": trainer.step, **metrics})
        line = f"ppo step {trainer.step}/{cfg.steps} {format_metrics(metrics)}"
        bar.update(1)
        bar.set_postfix(reward=f"{metrics['reward']:.3f}", kl=f"{metrics['kl']:.3f}")
        reporter.update(trainer.step, cfg.steps, metrics, line)
        stop = any_rank(reporter.stop_requested())  # every rank stops at the same step
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
