"""Progress reports and cancellation, shared by every stage and by the transformers Trainer loop.

The caller (a Celery task, the CLI) passes `progress(event)` and `should_stop()`; an event is
{"step": int, "total": int, "metrics": {name: float}, "log": str}, sent at most once per step.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

ProgressFn = Callable[[dict[str, Any]], None]
StopFn = Callable[[], bool]
_NOISE = ("runtime", "per_second", "preparation_time")  # Trainer timing keys, not training metrics


def format_metrics(metrics: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


class Reporter:
    """Sends progress events, prints log lines, and answers whether the caller asked to stop."""

    def __init__(
        self,
        progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
        *,
        is_main: bool = True,
        echo: bool = True,
    ) -> None:
        self.progress = progress
        self.should_stop = should_stop
        self.is_main = is_main
        self.echo = echo
        self._pending_log: list[str] = []

    def log(self, text: str) -> None:
        """Print a line, and send it with the next progress event (so the caller's log shows it too)."""
        if self.is_main and self.echo:
            print(text, file=sys.stderr, flush=True)
        self._pending_log.append(text)

    def update(self, step: int, total: int, metrics: dict[str, Any], log: str = "") -> None:
        if not self.is_main or self.progress is None:
            return
        clean = {
            k: float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and not any(n in k for n in _NOISE)
        }
        line = log or f"step {step}/{total} {format_metrics(clean)}".strip()
        line, self._pending_log = "\n".join([*self._pending_log, line]), []
        self.progress({"step": int(step), "total": int(total), "metrics": clean, "log": line})

    def stop_requested(self) -> bool:
        return bool(self.should_stop and self.should_stop())
