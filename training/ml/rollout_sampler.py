"""The rollout's sampling, whichever backend (PPOConfig.rollout_backend): transformers' generate chunk by
chunk, or one colocated vLLM engine for the whole rollout. The PPO loop scores what it yields.

Each yielded chunk is left-padded to its own longest prompt and its responses are cut to its own
longest response, so scoring runs over no column that is padding in every row. Sampling seeds are
drawn per chunk from the global index of its first episode (the same episodes on 1 or N processes);
vLLM samples the whole rollout with one seed drawn the same way from its first episode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import torch

from training.ml.config import PPOConfig
from training.ml.rollout import prompt_chunks, rollout_backend, sample, trim_to_longest

Chunk = tuple[
    int, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor
]  # start, query, mask, response, mask


def chunk_seed(seed: int, first_episode: int) -> int:
    return seed * 1_000_003 + first_episode


class RolloutSampler:
    """Samples a rollout's responses with the configured backend; told when the policy changed."""

    def __init__(self, cfg: PPOConfig, device: torch.device, pad_id: int, stop_ids: list[int], rank: int = 0):
        self.cfg, self.device, self.pad_id, self.stop_ids = cfg, device, pad_id, stop_ids
        self.backend = rollout_backend(cfg.rollout_backend, device)
        self.vllm: Any = None
        self.stale = True  # the engine has not got the policy's current weights
        if self.backend == "vllm":
            from training.ml.rollout_vllm import VLLMRollout

            self.vllm = VLLMRollout(
                cfg.model,
                cfg.max_prompt_length + cfg.max_new_tokens,
                cfg.vllm_gpu_memory_utilization,
                seed=cfg.seed + rank,
            )

    def describe(self) -> str:
        if self.backend == "vllm":
            return "vLLM (colocated, asleep between rollouts)"
        cache = "static KV cache" if self.cfg.static_cache or self.cfg.compile else "dynamic KV cache"
        return f"transformers, {cache}{', compiled' if self.cfg.compile else ''}"

    def policy_updated(self) -> None:
        """After an optimizer step: vLLM gets the new weights before the next rollout."""
        self.stale = True

    def chunks(
        self,
        policy: Any,
        prompts: list[list[int]],
        first_episode: int,
        autocast: Callable[[], AbstractContextManager[Any]],
    ) -> Iterator[Chunk]:
        """policy: whole weights (inside ppo_engine.gathered_for_generation). -> chunks on the device"""
        cfg = self.cfg
        size = cfg.generation_batch_size or cfg.mini_batch_size
        if self.vllm is not None:
            yield from self._vllm_chunks(policy.named_parameters(), prompts, first_episode, size)
            return
        devices = [self.device] if self.device.type == "cuda" else []
        for start, query, mask in prompt_chunks(prompts, size, self.pad_id):
            query, mask = query.to(self.device), mask.to(self.device)
            with torch.random.fork_rng(devices=devices), autocast():
                torch.manual_seed(chunk_seed(cfg.seed, first_episode + start))
                response, rmask = sample(
                    policy,
                    query,
                    mask,
                    cfg.max_new_tokens,
                    cfg.temperature,
                    self.pad_id,
                    self.stop_ids,
                    static_cache=cfg.static_cache,
                    compile=cfg.compile,
                )
            yield start, query, mask, response, rmask

    def _vllm_chunks(
        self, weights: Iterable[tuple[str, torch.Tensor]], prompts: list[list[int]], first: int, size: int
    ) -> Iterator[Chunk]:
        cfg = self.cfg
        if self.stale:
            self.vllm.push_weights(weights)
            self.stale = False
        response, rmask = self.vllm.sample(
            prompts,
            cfg.max_new_tokens,
            cfg.temperature,
            self.pad_id,
            self.stop_ids,
            seed=chunk_seed(cfg.seed, first),
        )
        for start, query, mask in prompt_chunks(prompts, size, self.pad_id):
            part, part_mask = trim_to_longest(response[start : start + size], rmask[start : start + size])
            yield (
                start,
                query.to(self.device),
                mask.to(self.device),
                part.to(self.device),
                part_mask.to(self.device),
            )
