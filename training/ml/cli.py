"""Command line: python -m training.ml {sft,rm,ppo,dpo,generate,tiny} [--recipe NAME] [--config FILE.yaml]
[--key value ...], and `python -m training.ml recipes` to list the named recipes.

A recipe's settings lie under the config file's, which lie under the command line's.

Progress events go to OUT/progress.jsonl; SIGTERM, Ctrl-C or a file OUT/STOP stops the run after the
current step (exit code 3, resumable); a bad config or dataset exits with code 2 and a message naming
the key, file, line and field. The final metrics are printed as one JSON line on stdout.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.ml.config import CONFIGS, describe, load_config
from training.ml.errors import ConfigError, TrainingCancelled, TrainingError
from training.ml.recipes import describe_recipes

USAGE = (
    f"usage: python -m training.ml {{{','.join(CONFIGS)}}} [--recipe NAME] [--config FILE.yaml] "
    "[--key value ...] [--help]\n       python -m training.ml recipes"
)
EXIT_ERROR, EXIT_CANCELLED = 2, 3


def parse_overrides(argv: list[str]) -> tuple[str | None, dict[str, str]]:
    """'--key value' and '--key=value' pairs; a bare '--flag' means true. Returns (config file, overrides)."""
    config_file, overrides = None, {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"expected --key value, got {token!r}")
        key, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value, i = argv[i + 1], i + 1
            else:
                value = "true"
        if key == "config":
            config_file = value
        else:
            overrides[key] = value
        i += 1
    return config_file, overrides


class StopSignal:
    """should_stop() for the CLI: a signal arrived or OUT/STOP exists."""

    def __init__(self, output_dir: str) -> None:
        self.stop_file = Path(output_dir) / "STOP"
        self.signalled = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signalled:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signalled = True
        print(f"signal {signum}: stopping after this step (send again to abort)", file=sys.stderr, flush=True)

    def __call__(self) -> bool:
        return self.signalled or self.stop_file.exists()


def progress_writer(output_dir: str) -> Callable[[dict[str, Any]], None]:
    path = Path(output_dir) / "progress.jsonl"

    def write(event: dict[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    return write


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0 if argv else EXIT_ERROR
    kind, rest = argv[0], argv[1:]
    if kind == "recipes":
        print(describe_recipes())
        return 0
    try:
        if kind not in CONFIGS:
            raise ConfigError(f"unknown stage {kind!r}; choose one of {', '.join(CONFIGS)}")
        if "--help" in rest or "-h" in rest:
            print(describe(kind))
            return 0
        config_file, overrides = parse_overrides(rest)
        cfg = load_config(kind, config_file, overrides)
        from training.ml.stages import run_stage

        stop = StopSignal(cfg.output_dir)
        metrics = run_stage(kind, cfg, progress_writer(cfg.output_dir), stop)
    except TrainingCancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(metrics, default=str))
    return 0
