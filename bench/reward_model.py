"""Listwise reward model (ours) against TRL's RewardTrainer fed the C(K,2) pairs of every ranking.

Same tiny model, same rankings, same epochs, same learning rate and schedule; K=4 and K=9.
Throughput is rankings per second of training loop time: a ranking is done once all its pairs have
been in a gradient step, so both sides finish every ranking once per epoch. The loop time is taken
from the end of the first optimizer step to the end of the last (warm-up excluded), scaled to all
steps, in wall-clock seconds and in process CPU seconds (steadier on a shared machine); each side runs
--repeats times, alternating, and its best run counts. Both batches hold the same number
of sequences per step (ours: B prompts x K completions; TRL: B*K/2 pairs). Held-out pairwise accuracy
is measured the same way for both (training.ml.reward_model.evaluate_rankings).

    python bench/reward_model.py [--train 128] [--valid 64] [--prompts-per-batch 8] [--lr 1e-3] [--repeats 2]

The last lines are `ratio K=4: <ours/TRL>` and `ratio K=9: <ours/TRL>` (rankings per second).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.ml import run_stage  # noqa: E402
from training.ml.data import as_pairs, format_prompt  # noqa: E402
from training.ml.tiny import _ANIMALS, _VERBS, build_gpt2_small_shape, build_tiny_model  # noqa: E402

TEMPLATE = "{prompt}\n"
MARKER = " good"  # one token


def rankings(count: int, k: int, seed: int, split: str) -> list[dict]:
    """K completions with 0..K-1 MARKERs in random order; more MARKERs rank higher, no ties (C(K,2) pairs)."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        animal = rng.choice(_ANIMALS)
        markers = rng.sample(range(k), k)
        rows.append(
            {
                "id": i,
                "prompt": f"What does the {animal} do?",
                "split": split,
                "ranks": [k - 1 - m for m in markers],
                "completions": [f"The {animal} {rng.choice(_VERBS)}." + MARKER * m for m in markers],
            }
        )
    return rows


class StepClock:
    """Wall and CPU time at the end of every optimizer step."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float]] = []

    def tick(self, *_: object, **__: object) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def loop_seconds(self) -> tuple[float, float]:
        """(wall, cpu) of the whole loop, from the steady per-step time after the first step."""
        steps = len(self.marks)
        (w0, c0), (w1, c1) = self.marks[0], self.marks[-1]
        return (w1 - w0) * steps / (steps - 1), (c1 - c0) * steps / (steps - 1)


def run_ours(model: Path, data: Path, out: Path, args: argparse.Namespace) -> dict:
    config = {
        "model": str(model),
        "dataset": str(data),
        "output_dir": str(out),
        "learning_rate": args.lr,
        "num_train_epochs": args.epochs,
        "per_device_train_batch_size": args.prompts_per_batch,
        "per_device_eval_batch_size": 32,
        "logging_steps": 50,
        "save_steps": 100_000,
        "progress_bar": False,
        "seed": args.seed,
        "resume": False,
    }
    clock = StepClock()
    metrics = run_stage("rm", config, progress=clock.tick, echo=False)
    wall, cpu = clock.loop_seconds()
    return {"wall": wall, "cpu": cpu, "accuracy": metrics["eval_accuracy"], "steps": metrics["steps"]}


def run_trl(
    model: Path, train: list[dict], valid: list[dict], out: Path, k: int, args: argparse.Namespace
) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    from training.ml.data import preference_groups
    from training.ml.render import Renderer
    from training.ml.reward_model import evaluate_rankings

    pairs = [
        {
            "chosen": format_prompt(TEMPLATE, p["prompt"]) + p["chosen"],
            "rejected": format_prompt(TEMPLATE, p["prompt"]) + p["rejected"],
        }
        for p in as_pairs(train)
    ]
    tokenizer = AutoTokenizer.from_pretrained(model)
    rm = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
    rm.config.pad_token_id = tokenizer.pad_token_id
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    config = RewardConfig(
        output_dir=str(out),
        learning_rate=args.lr,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=max(1, args.prompts_per_batch * k // 2),
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": 0.1},
        bf16=bf16,
        activation_checkpointing=False,
        logging_steps=50,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=args.seed,
        max_length=512,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    clock = StepClock()
    callback = type("Clock", (TrainerCallback,), {"on_step_end": clock.tick})()
    trainer = RewardTrainer(
        model=rm,
        args=config,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        callbacks=[callback],
    )
    trainer.train()
    held_out = evaluate_rankings(
        trainer.accelerator.unwrap_model(trainer.model),
        Renderer(tokenizer, TEMPLATE),
        preference_groups(valid),
        512,
        32,
    )
    wall, cpu = clock.loop_seconds()
    return {
        "wall": wall,
        "cpu": cpu,
        "accuracy": held_out["accuracy"],
        "steps": trainer.state.global_step,
        "pairs": len(pairs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=128, help="train rankings")
    parser.add_argument("--valid", type=int, default=64, help="held-out rankings")
    parser.add_argument("--prompts-per-batch", type=int, default=8)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2, help="runs per side; the fastest counts")
    parser.add_argument("--model", default="", help="model folder; default: a fresh tiny model")
    parser.add_argument("--gpt2-small", action="store_true", help="GPT-2 small's shape, random weights")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_rm_") as tmp:  # checkpoints are large: removed at the end
        run(Path(tmp), args)


def run(work: Path, args: argparse.Namespace) -> None:
    model = Path(args.model) if args.model else build_tiny_model(work / "tiny")
    if args.gpt2_small:
        model = build_gpt2_small_shape(model, work / "gpt2_small")
    results = {}
    for k in (4, 9):
        train = rankings(args.train, k, args.seed, "train")
        valid = rankings(args.valid, k, args.seed + 1, "valid")
        data = work / f"rankings_k{k}.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in train + valid))
        t0 = time.perf_counter()
        ours_runs, trl_runs = [], []
        for repeat in range(args.repeats):  # alternate, so both sides see the same machine load
            ours_runs.append(run_ours(model, data, work / f"ours_k{k}_{repeat}", args))
            trl_runs.append(run_trl(model, train, valid, work / f"trl_k{k}_{repeat}", k, args))
        ours, trl = (min(runs, key=lambda r: r["wall"]) for runs in (ours_runs, trl_runs))
        for r, runs in ((ours, ours_runs), (trl, trl_runs)):
            r["per_s"] = args.train / r["wall"]
            r["per_cpu_s"] = args.train / min(x["cpu"] for x in runs)
        for name, r in (("ours (listwise)", ours), ("TRL RewardTrainer (pairs)", trl)):
            print(
                f"K={k} {name:27s} rankings/s {r['per_s']:8.1f}  rankings/CPU-s {r['per_cpu_s']:8.1f}  "
                f"train loop {r['wall']:6.2f}s  steps {r['steps']:5d}  held-out pairwise accuracy {r['accuracy']:.3f}",
                flush=True,
            )
        print(
            f"K={k} TRL trained on {trl['pairs']} pairs from {args.train} rankings; wall {time.perf_counter() - t0:.0f}s"
        )
        results[k] = (ours, trl)
    for k, (ours, trl) in results.items():
        print(f"accuracy K={k}: ours {ours['accuracy']:.3f} TRL {trl['accuracy']:.3f}")
    for k, (ours, trl) in results.items():
        print(f"ratio by CPU time K={k}: {ours['per_cpu_s'] / trl['per_cpu_s']:.2f}")
    for k, (ours, trl) in results.items():
        print(f"ratio K={k}: {ours['per_s'] / trl['per_s']:.2f}")


if __name__ == "__main__":
    main()
