"""The bridge from transformers' Trainer loop (used by sft, rm and dpo) to a Reporter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from training.ml.checkpoints import save_config
from training.ml.errors import TrainingCancelled
from training.ml.progress import Reporter
from training.ml.ranks import any_rank
from training.ml.runtime import refuse_half_trainables


class ReporterCallback(TrainerCallback):
    """Bridges the Trainer loop to a Reporter: one event per optimizer step, checkpoint-and-stop on cancel."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.last: dict[str, float] = {}
        self.cancelled_at: int | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key, value in (logs or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.last[key] = float(value)

    def on_train_begin(self, args, state, control, **kwargs):
        """Step 0 of N at once: a run page shows its total (and the setup's log lines) before the first step."""
        self.reporter.update(state.global_step, state.max_steps, {})

    def on_step_end(self, args, state, control, **kwargs):
        self.reporter.update(state.global_step, state.max_steps, dict(self.last))
        if any_rank(self.reporter.stop_requested()):  # every rank stops at the same step
            self.cancelled_at = state.global_step
            control.should_save = True  # so a restart resumes from this step
            control.should_training_stop = True

    def raise_if_cancelled(self, output_dir: str) -> None:
        if self.cancelled_at is not None:
            raise TrainingCancelled(self.cancelled_at, output_dir)


class MasterWeightsGuard(TrainerCallback):
    """Refuses to start when a trainable parameter is bf16/fp16 and no engine keeps an fp32 master copy.

    DeepSpeed comes either from `deepspeed` in the arguments or from `accelerate launch` with a DeepSpeed
    config (ACCELERATE_USE_DEEPSPEED, args.deepspeed left empty); TrainingArguments builds its
    deepspeed_plugin in both cases, and the engine, which casts the module to bf16, keeps the fp32 copy."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if model is not None:
            deepspeed = bool(args.deepspeed) or getattr(args, "deepspeed_plugin", None) is not None
            refuse_half_trainables(model, engine_keeps_master=deepspeed)


class ConfigSaver(TrainerCallback):
    """Writes our stage config into every checkpoint-<step> folder the Trainer saves."""

    def __init__(self, kind: str, cfg: Any) -> None:
        self.kind, self.cfg = kind, cfg

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            save_config(Path(args.output_dir) / f"checkpoint-{state.global_step}", self.kind, self.cfg)


def stage_callbacks(
    kind: str, cfg: Any, reporter: Reporter
) -> tuple[ReporterCallback, list[TrainerCallback]]:
    """The progress/cancel bridge, and the full callback list to hand to a Trainer."""
    bridge = ReporterCallback(reporter)
    return bridge, [bridge, ConfigSaver(kind, cfg), MasterWeightsGuard()]
