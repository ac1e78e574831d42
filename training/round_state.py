"""What a round's finished steps produced, typed: the one shape rounds.py reads and writes, stored as
JSON in Round.state and published by the API through RoundStateSerializer."""

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RoundState:
    done: list[str] = field(default_factory=list)
    """The steps finished, in the order they finished."""
    snapshots: dict[str, int] = field(default_factory=dict)
    """Export kind (sft, rm_rankings or rm_pairs, prompts) -> DatasetSnapshot id."""
    runs: dict[str, list[int]] = field(default_factory=dict)
    """Step -> the TrainingRun ids it started (a retried run replaces the failed one)."""
    models: dict[str, int] = field(default_factory=dict)
    """sft, rm or policy -> the ModelVersion id the step registered."""
    retry: str = ""
    """The step a retry goes on from, until its failed runs are started again; empty otherwise."""

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "RoundState":
        """Tolerant of every row written so far: a missing key takes its default, unknown keys are
        dropped, ids stored as strings become ints."""
        data = data or {}
        return cls(
            done=[str(step) for step in data.get("done") or []],
            snapshots={str(k): int(v) for k, v in (data.get("snapshots") or {}).items()},
            runs={str(k): [int(pk) for pk in v] for k, v in (data.get("runs") or {}).items()},
            models={str(k): int(v) for k, v in (data.get("models") or {}).items() if v is not None},
            retry=str(data.get("retry") or ""),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
