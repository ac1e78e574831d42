"""PPO rollouts: sample responses, per-token log-probs and values, KL-shaped rewards, GAE advantages.

Shapes: B episodes, P prompt tokens (left-padded), R response tokens (right-padded), V vocabulary.

Speed (docs: bench/ppo.py measures each of these against a reference run):
- Each generation chunk is left-padded to its own longest prompt (prompt_chunks), not the batch's,
  and its responses are cut to its own longest response (trim_to_longest), so scoring (policy and
  reference log-probs, values, reward) never runs over columns that are padding in every row.
  TRL's GRPO/RLOO pad each generation batch to its own longest prompt and completion the same way.
- Backends (rollout_backend): vLLM when importable and on CUDA (rollout_vllm.py: colocated, sleep
  mode between phases, weights pushed after every update, as TRL's vllm_mode="colocate"), else
  transformers' generate, optionally with a static KV cache (cache_implementation="static") and, on
  a GPU, the forward compiled (generation_config.compile_config). transformers keeps the largest
  static cache length across calls (_previous_max_cache_length), so chunks of different widths
  reuse one compiled graph; we do not bucket widths ourselves.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from training.ml.errors import ConfigError
from training.ml.runtime import position_ids

BACKENDS = ("auto", "vllm", "transformers")


@dataclass
class Episodes:
    """A batch of (prompt, response) episodes and everything PPO needs about them."""

    query: torch.Tensor  # (B, P) left-padded prompt ids
    query_mask: torch.Tensor  # (B, P)
    response: torch.Tensor  # (B, R) sampled ids, pad after the end
    response_mask: torch.Tensor  # (B, R) 1 up to and including the first EOS
    logprobs: torch.Tensor  # (B, R) under the policy that sampled them
    ref_logprobs: torch.Tensor  # (B, R) under the frozen reference
    values: torch.Tensor  # (B, R) V(s_t) before each response token
    scores: torch.Tensor  # (B,) reward model score of the whole response
    rewards: torch.Tensor | None = None  # (B, R) -beta * KL_t, plus the score at the last token
    advantages: torch.Tensor | None = None  # (B, R) whitened GAE
    returns: torch.Tensor | None = None  # (B, R)

    def select(self, index: torch.Tensor) -> Episodes:
        selected: dict[str, Any] = {
            f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[index]
            for f in fields(self)
        }
        return Episodes(**selected)

    @classmethod
    def concat(cls, parts: list[Episodes], pad_id: int) -> Episodes:
        """Chunks sampled apart (each padded to its own longest prompt and response) as one batch:
        prompts left-padded, responses right-padded to the longest of all."""
        prompt_width = max(p.query.shape[1] for p in parts)
        width = max(p.response.shape[1] for p in parts)

        def joined(name: str) -> torch.Tensor:
            tensors = []
            for part in parts:
                tensor = getattr(part, name)
                if name in ("query", "query_mask"):
                    fill = pad_id if name == "query" else 0
                    tensor = F.pad(tensor, (prompt_width - tensor.shape[1], 0), value=fill)
                elif tensor.dim() == 2:
                    fill = pad_id if name == "response" else 0
                    tensor = F.pad(tensor, (0, width - tensor.shape[1]), value=fill)
                tensors.append(tensor)
            return torch.cat(tensors)

        names = [f.name for f in fields(cls) if getattr(parts[0], f.name) is not None]
        return cls(**{name: joined(name) for name in names})

    @property
    def full(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt + response ids and attention mask. -> (B, P + R) each"""
        return torch.cat([self.query, self.response], 1), torch.cat([self.query_mask, self.response_mask], 1)


def rollout_backend(choice: str, device: torch.device) -> str:
    """ "vllm" or "transformers" for the PPO config's rollout_backend. auto: vLLM when it is importable
    and the policy is on CUDA (vLLM runs on GPUs only), else transformers."""
    if choice not in BACKENDS:
        raise ConfigError(f"rollout_backend must be one of {', '.join(BACKENDS)}, got {choice!r}")
    available = importlib.util.find_spec("vllm") is not None and device.type == "cuda"
    if choice == "vllm" and not available:
        raise ConfigError("rollout_backend=vllm but vLLM is not installed or the policy is not on a GPU")
    if choice == "auto":
        return "vllm" if available else "transformers"
    return choice


def prompt_chunks(
    sequences: list[list[int]], size: int, pad_id: int
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """The prompts size at a time, each chunk left-padded to its own longest prompt: a batch with one
    long prompt costs one chunk of wide rows, not all of them. -> (start, ids (b, P_chunk), mask)"""
    for start in range(0, len(sequences), size):
        yield (start, *left_pad(sequences[start : start + size], pad_id))


def trim_to_longest(response: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop the response columns that are padding in every row (generate pads to the longest row of a
    batch, but under synced_gpus (ZeRO-3) to the longest of every rank's; vLLM's ragged outputs are
    padded by us). Scoring then runs over the longest response only. (B, R) x2 -> (B, R') x2"""
    width = max(int(mask.sum(1).max().item()), 1) if mask.numel() else 1
    return response[:, :width], mask[:, :width]


def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """-> ids (B, P), mask (B, P)"""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
            mask[row, width - len(seq) :] = 1
    return ids, mask


def is_stop(response: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """Where a stop token stands. (B, R) -> (B, R) bool"""
    return torch.isin(response, torch.tensor(stop_ids, device=response.device))


def response_mask(response: torch.Tensor, stop_ids: list[int]) -> torch.Tensor:
    """1 for tokens up to and including the first stop token. (B, R) -> (B, R)"""
    stops = is_stop(response, stop_ids).long()
    before_first_stop = (stops.cumsum(1) - stops) == 0
    return before_first_stop.long()


def response_content(
    tokenizer: Any, response: torch.Tensor, mask: torch.Tensor, stop_ids: list[int]
) -> tuple[torch.Tensor, list[str]]:
    """A response without its stop token: its mask (B, R), and its text (what a reward model or a
    labeler reads)."""
    content = mask * ~is_stop(response, stop_ids)
    texts = tokenizer.batch_decode(
        response.masked_fill(content == 0, tokenizer.pad_token_id), skip_special_tokens=True
    )
    return content, texts


@contextmanager
def plain_generation_config(model):
    """generate() fills every field our GenerationConfig leaves unset from the checkpoint's
    generation_config (repetition_penalty, no_repeat_ngram_size, top_k, min_p, ...), so a rollout would
    be drawn from something other than softmax(logits / T), while the PPO ratio and KL assume exactly
    that. During the call the model's own generation_config is a blank one."""
    from transformers import GenerationConfig

    saved = model.generation_config
    model.generation_config = GenerationConfig()
    try:
        yield
    finally:
        model.generation_config = saved


def rollout_generation_config(
    max_new_tokens: int,
    temperature: float,
    pad_id: int,
    stop_ids: list[int],
    top_p: float = 1.0,
    num_return_sequences: int = 1,
    static_cache: bool = False,
    compile: bool = False,
    greedy: bool = False,
) -> Any:
    """Every field our sampling depends on, set: softmax(logits / temperature) within top_p (or argmax
    when greedy), stopping at any stop id. static_cache: a preallocated KV cache instead of one grown
    per token (no reallocation; what compile needs). compile: transformers compiles the decoding
    forward (a static cache is implied); it does so on CUDA only, on the CPU it is a no-op."""
    from transformers import CompileConfig, GenerationConfig

    sampling = {} if greedy else {"temperature": temperature, "top_k": 0, "top_p": top_p}
    cache = {"cache_implementation": "static"} if static_cache or compile else {}
    return GenerationConfig(
        do_sample=not greedy,
        **sampling,
        **cache,
        max_new_tokens=max_new_tokens,
        num_return_sequences=num_return_sequences,
        pad_token_id=pad_id,
        eos_token_id=list(stop_ids),
        # transformers compiles by itself whenever the cache is static on a GPU: we ask for it or not.
        disable_compile=not compile,
        compile_config=CompileConfig() if compile else None,
    )


@torch.no_grad()
def sample(
    model: Any,
    query: torch.Tensor,
    query_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float,
    pad_id: int,
    stop_ids: list[int],
    top_p: float = 1.0,
    num_return_sequences: int = 1,
    static_cache: bool = False,
    compile: bool = False,
    greedy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample from softmax(logits / temperature) (and top_p when < 1), nothing else: no processor of
    the checkpoint's generation_config applies. Responses are cut to the longest one.
    -> response, mask (B * num_return_sequences, R)"""
    config = rollout_generation_config(
        max_new_tokens,
        temperature,
        pad_id,
        stop_ids,
        top_p,
        num_return_sequences,
        static_cache=static_cache,
        compile=compile,
        greedy=greedy,
    )
    with plain_generation_config(model):
        out = model.generate(input_ids=query, attention_mask=query_mask, generation_config=config)  # (B, P+R)
    response = out[:, query.shape[1] :]
    mask = response_mask(response, stop_ids)
    return trim_to_longest(response.masked_fill(mask == 0, pad_id), mask)


def response_logits(model: Any, ep: Episodes, temperature: float) -> torch.Tensor:
    """Logits that predicted each response token. -> (B, R, V)"""
    ids, mask = ep.full
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits  # (B, P+R, V)
    start = ep.query.shape[1] - 1
    return logits[:, start : start + ep.response.shape[1]].float() / temperature


def logprobs_of(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """(B, R, V), (B, R) -> (B, R)"""
    return torch.gather(F.log_softmax(logits, -1), 2, tokens.unsqueeze(-1)).squeeze(-1)


def entropy_of(logits: torch.Tensor) -> torch.Tensor:
    """(B, R, V) -> (B, R)"""
    logp = F.log_softmax(logits, -1)
    return -(logp.exp() * logp).sum(-1)


def response_values(value_model: torch.nn.Module, ep: Episodes) -> torch.Tensor:
    """V(s_t) read at the position that predicts response token t. -> (B, R)"""
    ids, mask = ep.full
    start = ep.query.shape[1] - 1
    return value_model(ids, mask)[:, start : start + ep.response.shape[1]]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    return (out if shift_mean else out + mean) * mask


def kl_rewards(ep: Episodes, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token reward -beta * (logp - logp_ref), with the score added at the last response token.

    -> rewards (B, R), per-token KL (B, R)
    """
    mask = ep.response_mask.float()
    kl = (ep.logprobs - ep.ref_logprobs) * mask  # (B, R)
    rewards = -beta * kl
    last = (ep.response_mask.sum(1) - 1).clamp(min=0)  # (B,)
    rewards[torch.arange(len(last), device=last.device), last] += ep.scores
    return rewards * mask, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens. (B, R) x3 -> advantages, returns (B, R)"""
    mask = mask.float()
    values = values * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, (advantages + values) * mask
