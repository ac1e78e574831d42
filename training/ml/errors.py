"""Exceptions raised by training.ml; each message says what to change."""


class TrainingError(Exception):
    """Base class of every error training.ml raises on purpose."""


class ConfigError(TrainingError):
    """A config file or --key value override is wrong (unknown key, bad type, missing value)."""


class DatasetError(TrainingError):
    """A dataset file is missing, empty or has a malformed line."""


class CheckpointError(TrainingError):
    """A model folder cannot be used for the requested stage."""


class TrainingCancelled(TrainingError):
    """The caller's should_stop() returned True; the last finished step was checkpointed."""

    def __init__(self, step: int, output_dir: str) -> None:
        super().__init__(f"training cancelled at step {step}; restart with output_dir={output_dir} to resume")
        self.step = step
        self.output_dir = output_dir
