"""PPO-ptx: the pretraining term of InstructGPT's objective, and the gradient norms that show its weight.

The paper maximises  E_RL[ r - beta * log(pi / pi_SFT) ] + gamma * E_pretrain[ log pi(x) ]  with
gamma = 27.8 and 8 pretraining examples per RL episode. Here the PPO term is the clipped surrogate on
whitened advantages, averaged over response tokens, and the ptx term is the negative log-likelihood
averaged over the ptx tokens, times ptx_coef. On this scale the paper's 27.8 makes the ptx gradient
60-100x the PPO gradient (so PPO moves the policy by 1-2% of each step), because whitening and token
means set a scale the paper does not publish. So ptx_coef is our own number, chosen so that
||grad ptx|| / ||grad PPO|| is about 1 at the start (logged every step as ptx/grad_ratio), and
ptx_ratio (sequences per episode, paper 8) changes only the variance of the ptx term, not its weight.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from training.ml.data import load_rows
from training.ml.render import Renderer


def ptx_sequences(path: str, renderer: Renderer, max_length: int, splits: str = "") -> list[list[int]]:
    """Token ids of every train row of an sft or text dataset, whole sequences as the model should
    write them (completion ended), each cut to its first max_length tokens."""
    out = []
    for row in load_rows(path, allowed=("sft", "text"), splits=splits):
        if row["split"] != "train":
            continue
        if "text" in row:
            ids = renderer.tokenizer(row["text"] + (renderer.tokenizer.eos_token or ""))["input_ids"]
        else:
            ids = renderer.text_ids(renderer.sequence_text(row["prompt"], row["completion"]))
        out.append(ids[:max_length])
    return out


class GradNorm:
    """The norm of the gradient that one backward pass adds to some parameters.

    Tensor hooks see each parameter's incoming gradient before it is added to .grad, so the PPO and
    the ptx gradients of one micro-batch are measured apart without copying any gradient."""

    def __init__(self, parameters: Any) -> None:
        self.parameters = [p for p in parameters if p.requires_grad]

    @contextmanager
    def measure(self, into: list[float]) -> Iterator[None]:
        squares: list[torch.Tensor] = []
        handles = [
            p.register_hook(lambda grad: squares.append(grad.detach().float().pow(2).sum()))
            for p in self.parameters
        ]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
        into.append(torch.stack(squares).sum().sqrt().item() if squares else 0.0)
