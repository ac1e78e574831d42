"""Stage 3, PPO with a KL penalty to the SFT model (InstructGPT recipe), on accelerate.

Each iteration: sample batch_size responses (temperature 1), score them with the frozen reward model,
shape per-token rewards -beta * KL with the score at the last token, GAE (gamma 1, lambda 0.95),
whitened advantages, then ppo_epochs passes of clipped policy and value losses over minibatches, with
optional PPO-ptx (ptx.py) in every micro-batch. Checkpoints checkpoint-<step>/ every save_steps; a
restart with the same output_dir resumes.

Where we follow and where we differ (TRL's last PPOTrainer, OpenRLHF, DeepSpeed-Chat):
- Separate policy and value models, value initialised from the reward model (paper, DeepSpeed-Chat),
  from the policy when the reward model has another tokenizer (it could not read the policy's ids);
  or, with shared_trunk, a value head on the policy (TRL's AutoModelForCausalLMWithValueHead).
- Rollouts sample from softmax(logits / T) alone: the checkpoint's generation_config is set aside
  (rollout.plain_generation_config), as the ratio and the KL assume.
- AdamW with weight_decay from the config (0 by default, like TRL's PPO; torch's default is 0.01) and
  one clip per model (OpenRLHF clips actor and critic apart; ppo_engine.py says where an engine can't).
- Policy and value are one prepared module with one optimizer (ppo_models.PolicyAndValue, as TRL's
  PolicyAndValueWrapper), so the stage runs on DDP, FSDP and DeepSpeed alike (ppo_engine.py); one
  forward and one backward per micro-batch, ptx included, accumulated by accelerate (gradients are
  all-reduced once per minibatch); the loss is a token mean over the whole minibatch (ppo_step.py).
- Sampling seeds per rollout chunk, drawn from the global index of its first episode: each rank samples
  its own responses, and a run gives the same episodes on 1 or N processes for the same global batch
  (TRL and OpenRLHF seed per rank: seed + rank). Advantages are whitened over every rank's tokens
  (OpenRLHF normalises globally too; TRL's PPO whitens per rank). The KL controller, the stop
  decision and the logged figures are averaged or agreed over ranks (ranks.py).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from training.ml.checkpoints import last_checkpoint, save_config, save_metrics
from training.ml.config import PPOConfig
from training.ml.data import load_rows, train_valid
from training.ml.errors import DatasetError, TrainingCancelled
from training.ml.ppo_checkpoints import STATE, load_ppo_checkpoint, save_ppo_checkpoint
from training.ml.ppo_engine import (
    check_accumulation,
    clip_per_model,
    engine_name,
    fill_deepspeed_config,
    frozen_on_engine,
    gathered_for_generation,
    save_policy,
)
from training.ml.ppo_models import (
    KLController,
    PolicyAndValue,
    RewardFn,
    RewardScorer,
    WeightEMA,
    value_model_for,
)
from training.ml.ppo_step import (
    minibatch_tokens,
    policy_gradient_norms,
    ppo_terms,
    ptx_term,
    response_logprobs,
    token_logprobs,
    whiten_over_ranks,
)
from training.ml.progress import Reporter, format_metrics
from training.ml.ptx import ptx_batch, ptx_sequences
from training.ml.ranks import any_rank, mean_over_ranks
from training.ml.render import Renderer, stop_token_ids
from training.ml.reward_model import pad_right
from training.ml.rollout import Episodes, gae, kl_rewards, response_content
from training.ml.rollout_sampler import RolloutSampler
from training.ml.runtime import (
    disable_dropout,
    load_causal_lm,
    load_tokenizer,
    refuse_half_trainables,
    resolve_precision,
    seed_everything,
)

EVAL_STREAM = 1 << 40  # sampling seeds of held-out evaluations lie apart from the training episodes'


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
        self.micro_per_mini = cfg.mini_batch_size // cfg.micro_batch_size
        # Built before any model loads: under ZeRO-3 from_pretrained then partitions at load.
        self.accelerator = acc = Accelerator(
            mixed_precision=precision, gradient_accumulation_steps=self.micro_per_mini
        )
        self.engine = engine_name(acc)
        self.tokenizer = load_tokenizer(cfg.model)
        self.renderer = Renderer.for_tokenizer(self.tokenizer, cfg.prompt_template, cfg.chat_template)
        self.pad_id = self.tokenizer.pad_token_id
        policy = load_causal_lm(cfg.model, trainable=True)
        self.stop_ids = stop_token_ids(self.tokenizer, policy.generation_config)
        ref = load_causal_lm(cfg.model, trainable=False, precision=precision)
        self.ref = frozen_on_engine(ref, acc)
        if reward_fn is not None:
            self.scorer = RewardScorer(fn=reward_fn)
        elif cfg.reward_model:
            self.scorer = RewardScorer.from_folder(
                cfg.reward_model,
                self.renderer,
                precision=precision,
                device=torch.device("cpu"),
                reporter=reporter,
            )
        else:
            self.scorer = RewardScorer()  # raises: no reward given
        value = None if cfg.shared_trunk else value_model_for(cfg, self.tokenizer, self.scorer, reporter)
        model = PolicyAndValue(policy, value)
        if self.scorer.model is not None:  # after the value model has read its weights and bias
            self.scorer.model = frozen_on_engine(self.scorer.model, acc)
        disable_dropout(model)
        refuse_half_trainables(model, engine_keeps_master=acc.state.deepspeed_plugin is not None)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        groups = [
            {"params": [p for p in policy.parameters() if p.requires_grad], "lr": cfg.learning_rate},
            {"params": model.value_parameters(), "lr": cfg.value_learning_rate or cfg.learning_rate},
        ]
        optimizer = torch.optim.AdamW(groups, eps=1e-5, weight_decay=cfg.weight_decay)
        fill_deepspeed_config(acc, cfg.micro_batch_size, cfg.max_grad_norm)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        check_accumulation(acc, self.micro_per_mini)
        value_clip = cfg.value_max_grad_norm if cfg.value_max_grad_norm is not None else cfg.max_grad_norm
        self.value_clip = value_clip
        if self.engine.startswith("deepspeed") and value_clip != cfg.max_grad_norm:
            reporter.log(f"note: {self.engine} clips policy and value together at max_grad_norm")
        inner = acc.unwrap_model(self.model)
        self.ema = WeightEMA(inner.policy, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.kl = KLController(cfg.kl_coef, cfg.adaptive_kl, cfg.kl_target, cfg.kl_horizon)
        self.prompts, self.valid_prompts = self._prompts()
        length = cfg.max_prompt_length + cfg.max_new_tokens
        self.ptx = (
            ptx_sequences(cfg.ptx_dataset, self.renderer, length, cfg.splits)
            if cfg.ptx_dataset and cfg.ptx_coef > 0
            else []  # a weight of 0 is ptx off: no sequences read, no extra forward and backward
        )
        self.sampler = RolloutSampler(cfg, acc.device, self.pad_id, self.stop_ids, acc.process_index)
        self.history: list[dict[str, Any]] = []
        self.step = 0

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
    def rollout(
        self, rows: list[dict[str, Any]], first_episode: int = 0
    ) -> tuple[Episodes, dict[str, float]]:
        """Sample, score and value every row's episode. first_episode: the global index of rows[0],
        which seeds each chunk's sampling (the same episodes on 1 or N processes)."""
        cfg, acc = self.cfg, self.accelerator
        ids = [self.renderer.prompt_ids(r["prompt"], cfg.max_prompt_length) for r in rows]
        timings = {"time/generate": 0.0, "time/score": 0.0}
        parts: list[Episodes] = []
        # Under DDP this is the plain module: a rollout runs no collective, so ranks may sample
        # different numbers of chunks. ZeRO-3 gathers the weights once for the whole rollout; FSDP
        # gathers per forward, so there every rank runs the same number of chunks (evaluate pads).
        with gathered_for_generation(self.model, acc) as model:
            model.eval()
            t0 = time.perf_counter()
            for start, q, qm, response, rmask in self.sampler.chunks(
                model.policy, ids, first_episode, acc.autocast
            ):
                t1 = time.perf_counter()
                chunk_rows = rows[start : start + len(q)]
                empty = torch.zeros(len(q), response.shape[1], device=acc.device)
                ep = Episodes(q, qm, response, rmask, empty, empty, empty, empty[:, 0])
                full, mask = ep.full
                with acc.autocast():  # the very forward the update runs: the first ratios are exactly 1
                    logits, values, _ = model(full, mask, response.shape[1])
                    ep.logprobs = token_logprobs(logits, response, cfg.temperature, cfg.logprob_chunk)
                    ep.ref_logprobs = response_logprobs(self.ref, ep, cfg.temperature, cfg.logprob_chunk)
                    ep.scores = self._score(ep, chunk_rows).float()
                ep.values = values.float()
                timings["time/generate"] += t1 - t0
                t0 = time.perf_counter()
                timings["time/score"] += t0 - t1
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
    def train_step(self) -> dict[str, float]:
        cfg, acc = self.cfg, self.accelerator
        rank, world = acc.process_index, acc.num_processes
        indices = episode_indices(len(self.prompts), self.step, cfg.batch_size, cfg.seed, rank, world)
        first = (self.step * world + rank) * cfg.batch_size
        ep, timings = self.rollout([self.prompts[i] for i in indices], first_episode=first)
        ep.rewards, kl = kl_rewards(ep, self.kl.value)
        advantages, ep.returns = gae(ep.rewards, ep.values, ep.response_mask, cfg.gamma, cfg.lam)
        ep.advantages = whiten_over_ranks(advantages, ep.response_mask.float(), acc)

        t0 = time.perf_counter()
        self.model.train()
        sums: dict[str, float] = {}  # this rank's shares of each minibatch's token means
        norms: dict[str, float] = {}
        minibatches, micro_index = 0, 0
        generator = torch.Generator().manual_seed(cfg.seed * 100_003 + self.step)
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(cfg.batch_size, generator=generator).to(acc.device)
            for start in range(0, cfg.batch_size, cfg.mini_batch_size):
                micros = [
                    order[lo : lo + cfg.micro_batch_size]
                    for lo in range(start, start + cfg.mini_batch_size, cfg.micro_batch_size)
                ]
                ptx = [self._ptx(micro_index + i) for i in range(len(micros))] if self.ptx else []
                tokens, ptx_count = minibatch_tokens(acc, ep, micros, ptx)
                for i, index in enumerate(micros):
                    measure = not norms and self.engine in ("single", "ddp")
                    self._micro_step(
                        ep.select(index),
                        ptx[i] if ptx else None,
                        tokens,
                        ptx_count,
                        sums,
                        norms if measure else None,
                    )
                    micro_index += 1
                minibatches += 1
        timings["time/update"] = time.perf_counter() - t0
        self.sampler.policy_updated()  # vLLM takes the new weights before the next rollout

        shares = mean_over_ranks({k: v / minibatches for k, v in sums.items()})
        metrics = {k: v * world for k, v in shares.items()}  # the sum of the ranks' shares: the token mean
        means = {
            **norms,
            "reward": ep.scores.mean().item(),
            "kl": kl.sum(1).mean().item(),
            "response_length": ep.response_mask.sum(1).float().mean().item(),
            **timings,
        }
        metrics.update(mean_over_ranks(means))
        self.kl.update(metrics["kl"], cfg.batch_size * world)
        metrics["beta"] = self.kl.value
        return metrics

    def _micro_step(
        self,
        mb: Episodes,
        ptx: list[list[int]] | None,
        tokens: float,
        ptx_count: float,
        sums: dict[str, float],
        norms: dict[str, float] | None,
    ) -> None:
        """One forward and one backward (PPO, value and ptx together); the optimizer steps on the
        minibatch's last micro-batch (accelerate.accumulate: no all-reduce before it)."""
        cfg, acc = self.cfg, self.accelerator
        with acc.accumulate(self.model):
            full, mask = mb.full
            ptx_ids = ptx_mask = None
            if ptx is not None:
                ptx_ids, ptx_mask = (t.to(acc.device) for t in pad_right(ptx, self.pad_id))  # (b, T)
            with acc.autocast():
                logits, values, ptx_logits = self.model(full, mask, mb.response.shape[1], ptx_ids, ptx_mask)
                terms = ppo_terms(
                    logits,
                    values,
                    mb,
                    tokens,
                    temperature=cfg.temperature,
                    cliprange=cfg.cliprange,
                    cliprange_value=cfg.cliprange_value,
                    chunk=cfg.logprob_chunk,
                )
                loss = terms.policy + cfg.vf_coef * terms.value
                if ptx_logits is not None:
                    assert ptx_ids is not None and ptx_mask is not None
                    terms.ptx = ptx_term(ptx_logits, ptx_ids, ptx_mask, ptx_count, cfg.logprob_chunk)
                    terms.stats["ptx_loss"] = terms.ptx.item()
                    loss = loss + cfg.ptx_coef * terms.ptx
            if norms is not None:  # once per iteration: how hard PPO and ptx each pull on the policy
                policy = acc.unwrap_model(self.model).policy
                norms.update(policy_gradient_norms(terms, policy, cfg.ptx_coef))
            acc.backward(loss * acc.num_processes * acc.gradient_accumulation_steps)
            if acc.sync_gradients:
                clip_per_model(acc, self.model, cfg.max_grad_norm, self.value_clip)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            if acc.sync_gradients and self.ema is not None:
                self.ema.update(acc.unwrap_model(self.model).policy)
        for key, value in terms.stats.items():
            sums[key] = sums.get(key, 0.0) + value

    def _ptx(self, index: int) -> list[list[int]]:
        acc = self.accelerator
        return ptx_batch(self.ptx, self.cfg, self.step, index, acc.process_index, acc.num_processes)

    # ---- held-out evaluation -------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        """Mean reward and KL per episode of one sample per valid prompt, each rank sampling its share;
        no update. Every rank samples as many episodes (the last prompts again, weighted 0), so that
        engines that gather weights per forward (FSDP, ZeRO-3) run the same forwards on every rank."""
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        rows = self.valid_prompts[: self.cfg.eval_prompts]
        if not rows:
            return {"eval/reward": float("nan"), "eval/kl": float("nan")}
        share = -(-len(rows) // world)
        mine = list(range(rank * share, (rank + 1) * share))
        weight = torch.tensor([1.0 if i < len(rows) else 0.0 for i in mine], device=self.accelerator.device)
        ep, _ = self.rollout([rows[min(i, len(rows) - 1)] for i in mine], EVAL_STREAM + rank * share)
        kl = ((ep.logprobs - ep.ref_logprobs) * ep.response_mask).sum(1)
        sums = {
            "reward": (ep.scores * weight).sum().item(),
            "kl": (kl * weight).sum().item(),
            "episodes": weight.sum().item(),
        }
        world_sums = mean_over_ranks(sums)  # means of sums: the ratio is the mean over every episode
        return {
            "eval/reward": world_sums["reward"] / world_sums["episodes"],
            "eval/kl": world_sums["kl"] / world_sums["episodes"],
        }

    # ---- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        state = {"kl_coef": self.kl.value, "history": self.history}
        save_ppo_checkpoint(self.accelerator, self.cfg, self.step, self.ema, state)

    def load_checkpoint(self, path: Path) -> None:
        state = load_ppo_checkpoint(self.accelerator, path, self.ema)
        self.step, self.kl.value, self.history = state["step"], state["kl_coef"], state["history"]
        self.reporter.log(f"ppo: resumed from {path} at step {self.step}")

    def save_final(self) -> None:
        """The policy (its EMA when on), gathered through accelerate, in the dtype of the checkpoint
        PPO started from."""
        acc = self.accelerator
        policy = acc.unwrap_model(self.model).policy
        with self.ema.swapped_in(policy) if self.ema is not None else nullcontext():
            save_policy(acc, self.model, self.cfg.output_dir, self.tokenizer, self.cfg.model)
        acc.wait_for_everyone()


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
