"""Inference after the Trainer has prepared its model, each rank on its share of the items.

The reward model's held-out accuracy and bias and the DPO margin run here, through the model the
Trainer prepared: the DeepSpeed engine (ZeRO-3 gathers one layer's weights at a time in its forward),
the FSDP-sharded module, or the model itself under DDP. Every rank scores every world_size-th batch
and accelerate gathers the results back into item order. The alternative, unwrapping and running a
full copy of the weights on every rank, costs the whole model's memory per rank under ZeRO-3 and FSDP
and does world_size times the work under DDP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch.utils.data import DataLoader

Item = TypeVar("Item")


def inference_model(trainer: Any) -> Any:
    """The model a forward pass goes through once the Trainer has prepared it (from on_train_begin on)."""
    if trainer.is_deepspeed_enabled:
        return trainer.model_wrapped  # the engine
    # Under FSDP the Trainer keeps the sharded module in trainer.model. Under DDP trainer.model is the
    # replica inside the wrapper: a no-grad forward needs no collective, so the wrapper is left out.
    return trainer.model


def score_shards(
    trainer: Any, items: Sequence[Item], score: Callable[[Any, list[Item]], torch.Tensor], batch_size: int
) -> torch.Tensor:
    """score(model, some items) -> (b,) per item, over all items through the prepared model. -> (N,) on the CPU

    Every rank calls score the same number of times, as the collectives inside an FSDP or ZeRO-3
    forward need: accelerate pads the last round of batches by repeating items, and gather_for_metrics
    drops the repeats. Batches are dealt out in turn (rank r takes batches r, r + world_size, ...), so
    the gathered rows come back in item order, and one process gives the same figures as many."""
    if not items:
        return torch.zeros(0)
    accelerator, model = trainer.accelerator, inference_model(trainer)
    indices: DataLoader[torch.Tensor] = DataLoader(range(len(items)), batch_size=batch_size)  # type: ignore[arg-type]
    loader = accelerator.prepare_data_loader(indices, device_placement=False)
    out = []
    for batch in loader:
        scores = score(model, [items[i] for i in batch.tolist()]).to(accelerator.device)  # (b,)
        out.append(accelerator.gather_for_metrics(scores).cpu())
    return torch.cat(out)
