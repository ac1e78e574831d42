"""Time per PPO step, split into generation / scoring / update, for the tiny model and for a GPT-2 small
architecture (124M parameters, randomly initialised, with the tiny tokenizer), so the slow part shows.

Scoring is the forward passes after sampling: policy and reference log-probs, values, reward model.
The reward model is a scalar-head copy of the same model (as when it is initialised from the SFT model),
and the value model starts from it. CUDA is used when present (accelerate picks the device).

    python bench/ppo.py [--steps 3] [--batch-size 16] [--max-new-tokens 32] [--skip-small | --skip-tiny]

The last lines are `ratio generate/step <model>: <share of the step spent sampling>`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.ml import run_stage  # noqa: E402
from training.ml.tiny import _ANIMALS, _COLOURS, build_gpt2_small_shape, build_tiny_model  # noqa: E402

PARTS = ("time/generate", "time/score", "time/update")


def time_steps(model: Path, prompts: Path, out: Path, args: argparse.Namespace) -> list[dict[str, float]]:
    config = {
        "model": str(model),
        "reward_model": str(model),
        "dataset": str(prompts),
        "output_dir": str(out),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "mini_batch_size": args.mini_batch_size,
        "micro_batch_size": args.micro_batch_size,
        "max_new_tokens": args.max_new_tokens,
        "learning_rate": 1e-5,
        "save_steps": 10_000,
        "progress_bar": False,
        "resume": False,
    }
    events: list[dict] = []
    run_stage("ppo", config, progress=events.append, echo=False)
    return [e["metrics"] for e in events]


def report(name: str, steps: list[dict[str, float]], episodes: int) -> float:
    """Print per-step times; return the share of generation in the steady steps (first one skipped)."""
    steady = steps[1:] or steps
    mean = {p: sum(s[p] for s in steady) / len(steady) for p in PARTS}
    total = sum(mean.values())
    for i, s in enumerate(steps, 1):
        print(
            f"{name:11s} step {i}: "
            + "  ".join(f"{p[5:]} {s[p]:7.3f}s" for p in PARTS)
            + f"  response length {s['response_length']:.1f}"
            + f"  generated tokens/s {episodes * s['response_length'] / s['time/generate']:8.0f}"
        )
    print(
        f"{name:11s} mean of steps 2..: "
        + "  ".join(f"{p[5:]} {mean[p]:7.3f}s ({mean[p] / total:4.0%})" for p in PARTS)
        + f"  total {total:.3f}s per step of {episodes} episodes",
        flush=True,
    )
    return mean["time/generate"] / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--mini-batch-size", type=int, default=8)
    parser.add_argument("--micro-batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--skip-small", action="store_true", help="only the tiny model")
    parser.add_argument("--skip-tiny", action="store_true", help="only the GPT-2-small-shaped model")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = (
        torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else f"CPU, {torch.get_num_threads()} threads"
    )
    print(
        f"device: {device}; batch {args.batch_size}, minibatch {args.mini_batch_size}, "
        f"{args.max_new_tokens} new tokens, temperature 1"
    )

    with tempfile.TemporaryDirectory(prefix="bench_ppo_") as tmp:  # checkpoints are large: removed at the end
        run(Path(tmp), args)


def run(work: Path, args: argparse.Namespace) -> None:
    prompts = work / "prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"prompt": f"What colour is the {a}? Not {c}.", "split": "train"}) + "\n"
            for a in _ANIMALS
            for c in _COLOURS
        )
    )
    tiny = build_tiny_model(work / "tiny")
    shares = {}
    if not args.skip_tiny:
        shares["tiny"] = report("tiny", time_steps(tiny, prompts, work / "ppo_tiny", args), args.batch_size)
    if not args.skip_small:
        small = build_gpt2_small_shape(tiny, work / "gpt2_small")
        shares["gpt2-small"] = report(
            "gpt2-small", time_steps(small, prompts, work / "ppo_small", args), args.batch_size
        )
    for name, share in shares.items():
        print(f"ratio generate/step {name}: {share:.2f}")


if __name__ == "__main__":
    main()
