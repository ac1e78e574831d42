"""PPO-ptx: the pretraining term of InstructGPT's objective: its sequences and their share per micro-batch.

The paper maximises  E_RL[ r - beta * log(pi / pi_SFT) ] + gamma * E_pretrain[ log pi(x) ]  with
gamma = 27.8 and 8 pretraining examples per RL episode. Here the PPO term is the clipped surrogate on
whitened advantages, averaged over response tokens, and the ptx term is the negative log-likelihood
averaged over the ptx tokens, times ptx_coef. On this scale the paper's 27.8 makes the ptx gradient
60-100x the PPO gradient (so PPO moves the policy by 1-2% of each step), because whitening and token
means set a scale the paper does not publish. So ptx_coef is our own number, chosen so that
||grad ptx|| / ||grad PPO|| is about 1 at the start (logged every step as ptx/grad_ratio, measured by
ppo_step.policy_gradient_norms), and ptx_ratio (sequences per episode, paper 8) changes only the
variance of the ptx term, not its weight. Both terms go into the same backward as PPO's.
"""

from __future__ import annotations

from typing import Any

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


def ptx_batch(
    sequences: list[list[int]], cfg: Any, step: int, index: int, rank: int, world: int
) -> list[list[int]]:
    """The ptx sequences of micro-batch `index` of an iteration on this rank (ptx_ratio per episode),
    laid out by the global micro-batch index, so that 1 or N processes read the same sequences for
    the same global batch."""
    size = max(1, round(cfg.micro_batch_size * cfg.ptx_ratio))
    per_step = cfg.ppo_epochs * cfg.batch_size // cfg.micro_batch_size
    first = ((step * per_step + index) * world + rank) * size
    return [sequences[(first + i) % len(sequences)] for i in range(size)]
