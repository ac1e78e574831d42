"""What PPO's log-probs keep for the backward: log_softmax over the whole fp32 logits (the loop before
ppo_step.token_logprobs) against the chunked, recomputed log-probs, on a GPT-2-small-shaped batch
(micro-batch 8, 128 response tokens, vocabulary 50257, bf16 logits as autocast gives them).

Counted with torch.autograd.graph.saved_tensors_hooks (bytes of the distinct tensors the graph holds),
so it runs the same on a CPU; on a GPU the peak allocated memory is printed too.

    python bench/ppo_memory.py [--batch 8] [--response 128] [--vocab 50257] [--chunk 64]

The last line is `ratio kept chunked/plain: X`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.ml.ppo_step import token_logprobs  # noqa: E402


def plain(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits.float(), -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def kept_bytes(fn, logits: torch.Tensor, tokens: torch.Tensor) -> tuple[int, int]:
    """Bytes the graph keeps for the backward (not counting the logits themselves), and the peak
    allocated on a GPU during forward and backward (0 on a CPU)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() != logits.untyped_storage().data_ptr():  # slices of the logits are free
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    if logits.is_cuda:
        torch.cuda.reset_peak_memory_stats()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(logits, tokens)
    out.sum().backward()
    logits.grad = None
    peak = torch.cuda.max_memory_allocated() if logits.is_cuda else 0
    return sum(seen.values()), peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--response", type=int, default=128)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--chunk", type=int, default=64)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    shape = (args.batch, args.response, args.vocab)
    logits = torch.randn(shape, dtype=torch.bfloat16, device=device, requires_grad=True)
    tokens = torch.randint(0, args.vocab, shape[:2], device=device)
    full, full_peak = kept_bytes(plain, logits, tokens)
    chunked, chunked_peak = kept_bytes(lambda x, t: token_logprobs(x, t, 1.0, args.chunk), logits, tokens)
    mib = 1 << 20
    print(f"logits {shape} bf16: {logits.numel() * 2 / mib:.0f} MiB on {device}")
    print(f"kept for backward, plain fp32 log_softmax: {full / mib:.1f} MiB")
    print(f"kept for backward, chunked ({args.chunk} positions): {chunked / mib:.3f} MiB")
    if device == "cuda":
        print(f"peak allocated: plain {full_peak / mib:.0f} MiB, chunked {chunked_peak / mib:.0f} MiB")
    print(f"ratio kept chunked/plain: {chunked / max(full, 1):.6f}")


if __name__ == "__main__":
    main()
