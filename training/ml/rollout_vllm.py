"""PPO rollouts with vLLM colocated with training on the same GPU. UNTESTED: vLLM is not installable
on the machines this was written on (no CUDA); written against vLLM's documented API and TRL 1.16's
colocate mode (trl/generation/vllm_generation.py). Imported only when vLLM is (rollout.rollout_backend).

Where we follow TRL and where we differ:
- LLM(..., enable_sleep_mode=True) and llm.sleep(level=2) between phases, so training gets the memory
  back; wake_up(tags=["weights"]) before pushing weights, wake_up(tags=["kv_cache"]) before sampling
  (TRL does the same, in that order, to avoid writing into unmapped memory).
- Weights pushed after every update through the model runner's load_weights, name by name, then
  reset_prefix_cache (TRL's sync_weights, colocate branch). The caller passes gathered weights
  (ppo_engine.gathered_for_generation), as TRL does under ZeRO-3/FSDP.
- We ask vLLM for tokens only, not log-probs: the policy's log-probs are recomputed by the same forward
  the update runs, so the first PPO ratios are exactly 1 (TRL instead corrects the vLLM/trainer
  mismatch with truncated importance sampling).
- Sampling is softmax(logits / T) within top_p, top_k off, no penalties: what the PPO ratio assumes.
- One engine per process (distributed_executor_backend="external_launcher", seed per rank), no tensor
  parallelism: enough for policies that fit one GPU next to training. OpenRLHF instead runs vLLM
  engines as Ray actors (--colocate_all_models, --vllm_enable_sleep) and broadcasts weights over
  NCCL or CUDA IPC; that needs Ray, which we do not run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from training.ml.rollout import response_mask, trim_to_longest


class VLLMRollout:
    """One colocated vLLM engine sampling the policy's responses; asleep outside sample()."""

    def __init__(self, model: str, max_model_len: int, gpu_memory_utilization: float, seed: int) -> None:
        from vllm import LLM

        self.llm = LLM(
            model=model,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_sleep_mode=True,
            distributed_executor_backend="external_launcher",
            seed=seed,
        )
        self.llm.sleep(level=2)  # level 2 drops the weights too: they are pushed before each rollout

    def push_weights(self, named_parameters: Iterable[tuple[str, torch.Tensor]]) -> None:
        """The policy's current weights (Hugging Face names) into the engine, after every update."""
        torch.cuda.empty_cache()
        self.llm.wake_up(tags=["weights"])
        runner = self.llm.llm_engine.model_executor.driver_worker.model_runner
        for name, param in named_parameters:
            runner.model.load_weights([(name, param.detach())])
        self.llm.reset_prefix_cache()

    def sample(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        temperature: float,
        pad_id: int,
        stop_ids: list[int],
        seed: int,
        top_p: float = 1.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample every prompt at once (vLLM batches continuously, so no chunks), then sleep. We assume
        vLLM keeps a stop token from stop_token_ids in token_ids (as it does the EOS); response_mask
        then ends each response there, as with transformers.
        -> response, mask (B, R) cut to the longest response"""
        from vllm import SamplingParams

        params = SamplingParams(
            temperature=temperature,
            top_p=top_p,
            top_k=-1,
            max_tokens=max_new_tokens,
            stop_token_ids=list(stop_ids),
            seed=seed,
            detokenize=False,
        )
        self.llm.wake_up(tags=["kv_cache"])
        try:
            outputs: Any = self.llm.generate(
                [{"prompt_token_ids": ids} for ids in prompts], sampling_params=params, use_tqdm=False
            )
        finally:
            self.llm.sleep(level=2)
        tokens = [list(out.outputs[0].token_ids) for out in outputs]
        width = max((len(t) for t in tokens), default=1) or 1
        response = torch.full((len(tokens), width), pad_id, dtype=torch.long)
        for row, ids in enumerate(tokens):
            response[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask = response_mask(response, stop_ids)
        return trim_to_longest(response.masked_fill(mask == 0, pad_id), mask)
