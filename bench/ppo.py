"""Time per PPO step, split into generation / scoring / update, for the tiny model and for a GPT-2 small
architecture (124M parameters, randomly initialised, with the tiny tokenizer), so the slow part shows;
then the rollout's speed-ups against a reference run in the same process.

Scoring is the forward passes after sampling: policy and reference log-probs, values, reward model.
The reward model is a scalar-head copy of the same model (as when it is initialised from the SFT model),
and the value model starts from it. CUDA is used when present (accelerate picks the device).

    python bench/ppo.py [--steps 3] [--batch-size N] [--max-new-tokens N] [--skip-small | --skip-tiny]
                        [--rollout-backend auto|vllm|transformers] [--static-cache] [--compile]
                        [--skip-ppo] [--skip-rollout]

Defaults: on a GPU the issue's target shape (batch 256, 128 new tokens, minibatch 64, micro-batch 32,
the whole batch in one generate call); on the CPU small ones (batch 16, 32 new tokens, 8 prompts per
generate call) so the bench runs in minutes. The padding comparison needs several chunks: when one
generate call takes the whole batch, it splits the batch in four.

Lines printed per model: each step's phase times and generated tokens/s, the mean share of each phase
(generation, scoring, update); then `ratio ...` lines, each a time or a rate against a reference run
in the same process:
    ratio generate/step <model>               share of the PPO step spent sampling
    ratio static/dynamic cache <model>        generated tokens/s with a static KV cache over a dynamic one
    ratio compiled/dynamic cache <model>      the same with the forward compiled (GPU only)
    ratio chunk/global padding <model>        sample + score time, prompts padded per chunk over padded
                                              to the longest prompt of the whole batch (shorter is better)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
        "generation_batch_size": args.generation_batch_size,
        "rollout_backend": args.rollout_backend,
        "static_cache": args.static_cache,
        "compile": args.compile,
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
    tokens = episodes * sum(s["response_length"] for s in steady) / len(steady)
    print(
        f"{name:11s} mean of steps 2..: "
        + "  ".join(f"{p[5:]} {mean[p]:7.3f}s ({mean[p] / total:4.0%})" for p in PARTS)
        + f"  total {total:.3f}s per step of {episodes} episodes"
        + f"  generated tokens/s {tokens / mean['time/generate']:.0f}",
        flush=True,
    )
    return mean["time/generate"] / total


# ---- rollout speed-ups, each against a reference run ---------------------------------------------
def varied_prompts(tokenizer: Any, n: int) -> list[list[int]]:
    """Prompt ids of very different lengths: one long prompt in 32, the rest of 1-3 sentences. Chunk
    padding gains only in chunks without a long prompt: with 64-prompt chunks, every chunk here has
    one, and the two ways cost the same."""
    sentences = [f"What colour is the {a}? Not {c}." for a in _ANIMALS for c in _COLOURS]
    prompts = []
    for i in range(n):
        repeat = 12 if i % 32 == 0 else 1 + i % 3
        prompts.append(tokenizer(" ".join(sentences[i % len(sentences)] for _ in range(repeat)))["input_ids"])
    return prompts


def rollout_pass(
    model: Any, chunks: list[tuple[Any, Any]], args: argparse.Namespace, **options: Any
) -> tuple:
    """Sample every chunk, then one policy forward over prompt + response (what scoring costs per
    model). -> generation seconds, scoring seconds, generated tokens"""
    import torch

    from training.ml.rollout import sample
    from training.ml.runtime import position_ids

    pad, stops = args.pad_id, [args.eos_id]
    generate = score = 0.0
    tokens = 0
    for query, mask in chunks:
        sync(model)
        t0 = time.perf_counter()
        torch.manual_seed(0)
        response, rmask = sample(model, query, mask, args.max_new_tokens, 1.0, pad, stops, **options)
        sync(model)
        t1 = time.perf_counter()
        with torch.no_grad():
            ids, full = torch.cat([query, response], 1), torch.cat([mask, rmask], 1)
            model(input_ids=ids, attention_mask=full, position_ids=position_ids(full))
        sync(model)
        generate, score, tokens = (
            generate + t1 - t0,
            score + time.perf_counter() - t1,
            tokens + int(rmask.sum()),
        )
    return generate, score, tokens


def best_of(repeats: int, *args: Any, **options: Any) -> tuple:
    """The fastest of a few passes: a shared machine's noise only ever adds time."""
    return min((rollout_pass(*args, **options) for _ in range(repeats)), key=lambda r: r[0] + r[1])


def sync(model: Any) -> None:
    import torch

    if model.device.type == "cuda":
        torch.cuda.synchronize()


def rollout_ratios(name: str, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    import torch

    from training.ml.rollout import left_pad, prompt_chunks
    from training.ml.runtime import load_causal_lm, load_tokenizer

    cuda = torch.cuda.is_available()
    tokenizer = load_tokenizer(str(folder))
    args.pad_id, args.eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    model = load_causal_lm(str(folder), trainable=False, precision="bf16" if cuda else "no")
    model.to("cuda" if cuda else "cpu").eval()
    ids = varied_prompts(tokenizer, args.batch_size)
    size = args.generation_batch_size if args.generation_batch_size < len(ids) else max(len(ids) // 4, 1)

    def on_device(pairs: list) -> list:
        return [(q.to(model.device), m.to(model.device)) for q, m in pairs]

    per_chunk = on_device([(q, m) for _, q, m in prompt_chunks(ids, size, args.pad_id)])
    query, mask = left_pad(ids, args.pad_id)
    global_pad = on_device([(query[i : i + size], mask[i : i + size]) for i in range(0, len(ids), size)])

    runs = {"dynamic": {}, "static": {"static_cache": True}}
    if cuda:
        runs["compiled"] = {"static_cache": True, "compile": True}
    rates = {}
    for label, options in runs.items():
        rollout_pass(model, per_chunk[:1], args, **options)  # warm-up (and compilation)
        generate, _, tokens = best_of(args.repeats, model, per_chunk, args, **options)
        rates[label] = tokens / generate
        print(f"{name:11s} {label:8s} cache: generated tokens/s {rates[label]:8.0f}", flush=True)
    timed = {}
    for label, chunks in (("global", global_pad), ("chunk", per_chunk)):
        generate, score, tokens = best_of(args.repeats, model, chunks, args)
        timed[label] = generate + score
        print(
            f"{name:11s} {label:6s} padding: prompt widths {','.join(str(q.shape[1]) for q, _ in chunks)}  "
            f"generate {generate:7.3f}s  score {score:7.3f}s  generated tokens {tokens}",
            flush=True,
        )
    ratios = {f"static/dynamic cache {name}": rates["static"] / rates["dynamic"]}
    if cuda:
        ratios[f"compiled/dynamic cache {name}"] = rates["compiled"] / rates["dynamic"]
    ratios[f"chunk/global padding {name}"] = timed["chunk"] / timed["global"]
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None, help="GPU: 256, CPU: 16")
    parser.add_argument("--mini-batch-size", type=int, default=None, help="GPU: 64, CPU: 8")
    parser.add_argument("--micro-batch-size", type=int, default=None, help="GPU: 32, CPU: 8")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="GPU: 128, CPU: 32")
    parser.add_argument(
        "--generation-batch-size", type=int, default=None, help="prompts per generate call; GPU: 256, CPU: 8"
    )
    parser.add_argument("--rollout-backend", default="auto", choices=["auto", "vllm", "transformers"])
    parser.add_argument("--static-cache", action="store_true", help="PPO steps with a static KV cache")
    parser.add_argument("--compile", action="store_true", help="PPO steps with the forward compiled (GPU)")
    parser.add_argument("--repeats", type=int, default=3, help="rollout comparisons: best of N passes")
    parser.add_argument("--skip-small", action="store_true", help="only the tiny model")
    parser.add_argument("--skip-tiny", action="store_true", help="only the GPT-2-small-shaped model")
    parser.add_argument("--skip-ppo", action="store_true", help="only the rollout comparisons")
    parser.add_argument("--skip-rollout", action="store_true", help="only the PPO steps")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available()
    defaults = {"batch_size": 256, "mini_batch_size": 64, "micro_batch_size": 32, "max_new_tokens": 128}
    defaults["generation_batch_size"] = 256  # one decoding loop for the whole batch: what a GPU is fast at
    if not cuda:
        defaults = {"batch_size": 16, "mini_batch_size": 8, "micro_batch_size": 8, "max_new_tokens": 32}
        defaults["generation_batch_size"] = 8
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"device: {device}; batch {args.batch_size}, minibatch {args.mini_batch_size}, "
        f"{args.max_new_tokens} new tokens, temperature 1; rollouts: {args.rollout_backend}"
        f"{', static cache' if args.static_cache else ''}{', compiled' if args.compile else ''}"
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
    models = {} if args.skip_tiny else {"tiny": tiny}
    if not args.skip_small:
        models["gpt2-small"] = build_gpt2_small_shape(tiny, work / "gpt2_small")
    ratios = {}
    for name, folder in models.items():
        if not args.skip_ppo:
            steps = time_steps(folder, prompts, work / f"ppo_{name}", args)
            ratios[f"generate/step {name}"] = report(name, steps, args.batch_size)
        if not args.skip_rollout:
            ratios.update(rollout_ratios(name, folder, args))
    for label, ratio in ratios.items():
        print(f"ratio {label}: {ratio:.2f}")


if __name__ == "__main__":
    main()
