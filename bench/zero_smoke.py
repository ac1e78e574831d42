"""A 1-GPU smoke run of every stage under DeepSpeed ZeRO-2 and ZeRO-3, as the GPU worker launches them.

For each shipped config (training/ml/launch/zero2.yaml, zero3.yaml) it runs sft -> rm -> dpo and ppo on the tiny
model through `accelerate launch --num_processes 1 -m training.ml <stage> --config <file>` and prints one line a
stage: its exit status, seconds and final metrics. It needs a CUDA GPU and the deepspeed package (bench/gpu.sh runs
it when both are there); it proves the stages start, train, save and evaluate under the engine, not speed.

    python bench/zero_smoke.py [--out /tmp/zero-smoke] [--configs zero2 zero3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ml import factories  # noqa: E402  (the tests' small datasets: no download)
from training.ml.tiny import build_tiny_model  # noqa: E402


def _stage(out: Path, launch: str, kind: str, config: dict) -> tuple[int, dict]:
    path = out / launch / f"{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))  # JSON is YAML: the CLI reads it with --config
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "training" / "ml" / "launch" / f"{launch}.yaml"),
        "--num_processes", "1", "--main_process_port", "0",
        "-m", "training.ml", kind, "--config", str(path), "--progress_bar", "false",
    ]  # fmt: skip
    log = out / launch / f"{kind}.log"
    with log.open("w") as handle:
        code = subprocess.run(command, cwd=REPO, stdout=handle, stderr=subprocess.STDOUT).returncode
    metrics: dict = {}
    try:
        metrics = json.loads((Path(config["output_dir"]) / "metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        pass
    return code, metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/zero-smoke")
    parser.add_argument("--configs", nargs="+", default=["zero2", "zero3"])
    args = parser.parse_args()
    out = Path(args.out)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    rankings = factories.ranking_rows()
    factories.write_jsonl(data / "sft.jsonl", factories.sft_rows())
    factories.write_jsonl(data / "rankings.jsonl", rankings)
    factories.write_jsonl(data / "pairs.jsonl", factories.pair_rows(rankings))
    factories.write_jsonl(data / "prompts.jsonl", factories.prompt_rows())
    base = build_tiny_model(out / "base")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    failures = 0
    for launch in args.configs:
        runs = out / launch
        small = {"max_steps": 4, "per_device_train_batch_size": 4}
        plan = [
            ("sft", {"model": str(base), "dataset": str(data / "sft.jsonl"), **small}),
            ("rm", {"model": str(runs / "sft"), "dataset": str(data / "rankings.jsonl"), **small}),
            ("dpo", {"model": str(runs / "sft"), "dataset": str(data / "pairs.jsonl"), **small}),
            ("ppo", {
                "model": str(runs / "sft"), "reward_model": str(runs / "rm"),
                "dataset": str(data / "prompts.jsonl"), "steps": 2, "batch_size": 8,
                "mini_batch_size": 4, "micro_batch_size": 4, "max_new_tokens": 8,
            }),
        ]  # fmt: skip
        for kind, config in plan:
            config["output_dir"] = str(runs / kind)
            start = time.monotonic()
            code, metrics = _stage(out, launch, kind, config)
            failures += code != 0
            shown = {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)}
            print(
                f"{launch} {kind}: exit {code} in {time.monotonic() - start:.0f} s {json.dumps(shown)[:300]}"
            )
            if code != 0:
                print((runs / f"{kind}.log").read_text()[-2000:])
                break  # the next stages need this one's model
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
