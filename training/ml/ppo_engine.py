"""What PPO asks of the engine accelerate runs it on (none, DDP, FSDP, DeepSpeed ZeRO-2/3).

- One prepared module (ppo_models.PolicyAndValue) and one optimizer: DeepSpeed allows one engine per
  Accelerator. OpenRLHF and DeepSpeed-Chat run actor and critic as two engines instead, each with its
  own Accelerator-free DeepSpeed setup; one module keeps us on accelerate's prepare, save_state and
  accumulate.
- Generation runs on gathered weights: TRL's unwrap_model_for_generation (it gathers ZeRO-3 shards for
  the whole rollout), FSDP1's summon_full_params at the root (TRL's RLOO and GRPO do the same) or an
  FSDP2 root unshard; generate() turns synced_gpus on by itself under ZeRO-3 and FSDP.
- The frozen reference and reward models are replicas in the run's half precision; under ZeRO-3,
  which partitions every model loaded after the Accelerator, they become DeepSpeed inference engines
  (TRL's prepare_deepspeed).
- Gradient clipping per model (policy, value) where the gradients are ours to clip (no engine, DDP,
  FSDP2); DeepSpeed and FSDP1 clip the whole module once, at max_grad_norm.
Tested: no engine and DDP (CPU, gloo). The FSDP and DeepSpeed paths have not run here: accelerate
1.16 prepares DDP on the CPU whatever the FSDP plugin says, and DeepSpeed needs a GPU.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch

from training.ml.errors import CheckpointError, ConfigError
from training.ml.runtime import checkpoint_dtype


def engine_name(accelerator: Any) -> str:
    """'deepspeed-zero<N>', 'fsdp<N>', 'ddp' or 'single'."""
    state = accelerator.state
    if state.deepspeed_plugin is not None:
        return f"deepspeed-zero{state.deepspeed_plugin.zero_stage}"
    fsdp = getattr(state, "fsdp_plugin", None)
    if fsdp is not None:
        return f"fsdp{fsdp.fsdp_version}"
    return "ddp" if accelerator.num_processes > 1 else "single"


def fill_deepspeed_config(accelerator: Any, micro_batch_size: int, max_grad_norm: float) -> None:
    """accelerate fills DeepSpeed's 'auto' batch size from a prepared DataLoader; PPO has none (its
    batches come from the rollout), so the micro-batch and the clip are set here, as TRL does."""
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None:
        return
    config = plugin.deepspeed_config
    if config.get("train_micro_batch_size_per_gpu", "auto") == "auto":
        config["train_micro_batch_size_per_gpu"] = micro_batch_size
    if config.get("gradient_clipping", "auto") == "auto":
        config["gradient_clipping"] = max_grad_norm
    zero = config.setdefault("zero_optimization", {})
    if zero.get("stage3_gather_16bit_weights_on_model_save", "auto") == "auto":
        zero["stage3_gather_16bit_weights_on_model_save"] = True  # get_state_dict gathers ZeRO-3 shards


def check_accumulation(accelerator: Any, micro_per_mini: int) -> None:
    """A DeepSpeed config with its own gradient_accumulation_steps wins over ours in accelerate; the
    loop would then step the optimizer in the middle of a minibatch."""
    if accelerator.gradient_accumulation_steps != micro_per_mini:
        raise ConfigError(
            f"the DeepSpeed config sets gradient_accumulation_steps {accelerator.gradient_accumulation_steps}, "
            f"PPO needs mini_batch_size / micro_batch_size = {micro_per_mini}: set it to 'auto'"
        )


def frozen_on_engine(model: Any, accelerator: Any) -> Any:
    """A frozen model (reference, reward) where the engine can run it: a DeepSpeed inference engine
    under ZeRO-3 (its weights were partitioned at load), else the replica on this rank's device."""
    if engine_name(accelerator) == "deepspeed-zero3":
        from trl.models.utils import prepare_deepspeed

        return prepare_deepspeed(model, accelerator)
    return model.to(accelerator.device)


@contextmanager
def gathered_for_generation(model: Any, accelerator: Any) -> Iterator[Any]:
    """The PolicyAndValue module with whole weights, for a rollout (generate and score)."""
    from trl.models.utils import unwrap_model_for_generation

    with ExitStack() as stack:
        unwrapped = stack.enter_context(unwrap_model_for_generation(model, accelerator))
        engine = engine_name(accelerator)
        if engine == "fsdp1":
            from torch.distributed.fsdp import FullyShardedDataParallel

            stack.enter_context(FullyShardedDataParallel.summon_full_params(model, recurse=False))
        elif engine == "fsdp2" and hasattr(unwrapped, "unshard"):
            # generate() calls the policy, not the root module, so the root's own forward hook (which
            # gathers what is not in a child unit: embeddings, head) never runs: gather it here.
            unwrapped.unshard()
            stack.callback(unwrapped.reshard)
        yield unwrapped


def clip_per_model(accelerator: Any, model: Any, max_grad_norm: float, value_max_grad_norm: float) -> None:
    """Clip the policy's and the value's gradients apart (OpenRLHF clips actor and critic apart: one
    shared clip let the value's large early gradients shrink the policy's step)."""
    engine = engine_name(accelerator)
    if engine.startswith("deepspeed"):
        return  # the engine clips at its gradient_clipping (max_grad_norm) inside optimizer.step
    if engine == "fsdp1":
        accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        return
    accelerator.unscale_gradients()  # fp16: the clip reads true gradients
    inner = accelerator.unwrap_model(model)
    policy = [p for p in inner.policy.parameters() if p.requires_grad]
    torch.nn.utils.clip_grad_norm_(policy, max_grad_norm)
    torch.nn.utils.clip_grad_norm_(inner.value_parameters(), value_max_grad_norm)


def save_policy(accelerator: Any, model: Any, out: str | Path, tokenizer: Any, source: str) -> None:
    """Write the policy as a Hugging Face folder from accelerate.get_state_dict (which gathers ZeRO-3
    and FSDP shards onto the main rank), in the dtype of the checkpoint PPO started from."""
    state = accelerator.get_state_dict(model)  # every rank joins the gather; the main rank gets it
    if not accelerator.is_main_process:
        return
    dtype = checkpoint_dtype(source)
    half = dtype in (torch.bfloat16, torch.float16)
    policy_state = {
        name.removeprefix("policy."): tensor.to(dtype) if half and tensor.is_floating_point() else tensor
        for name, tensor in state.items()
        if name.startswith("policy.")
    }
    policy = accelerator.unwrap_model(model).policy
    config = copy.deepcopy(policy.config)
    if half:
        config.dtype = dtype
    # A fresh copy on the meta device takes the gathered tensors as they are (assign): the live policy
    # may be sharded (DTensors, ZeRO-3 placeholders), and transformers' save_pretrained would run
    # collectives on it from this rank alone.
    with torch.device("meta"):
        clean = type(policy)._from_config(config)
    clean.load_state_dict(policy_state, strict=False, assign=True)
    clean.tie_weights()
    missing = [name for name, p in clean.named_parameters() if p.is_meta]
    if missing:
        raise CheckpointError(f"the gathered policy has no weights for {missing[:3]}: nothing was saved")
    clean.generation_config = copy.deepcopy(policy.generation_config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean.save_pretrained(out)
    tokenizer.save_pretrained(out)
