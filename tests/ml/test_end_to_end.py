"""sft -> rm -> ppo -> generate through the command line, as a GPU worker would run it."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "training.ml", *args, "--progress_bar", "false"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_sft_rm_ppo_generate_from_one_folder(tiny_model, data_dir, tmp_path):
    sft, rm, ppo, gen = (tmp_path / name for name in ("sft", "rm", "ppo", "generate"))
    cli(
        "sft",
        "--model",
        str(tiny_model),
        "--dataset",
        str(data_dir / "sft.jsonl"),
        "--output_dir",
        str(sft),
        "--learning_rate",
        "3e-3",
        "--max_steps",
        "8",
    )
    rm_config = tmp_path / "rm.yaml"
    rm_config.write_text(
        f"model: {sft}\ndataset: {data_dir / 'rankings.jsonl'}\noutput_dir: {rm}\n"
        "learning_rate: 1.0e-3\nmax_steps: 4\n"
    )
    rm_metrics = cli("rm", "--config", str(rm_config), "--per_device_train_batch_size", "4")
    ppo_metrics = cli(
        "ppo",
        "--model",
        str(sft),
        "--reward_model",
        str(rm),
        "--dataset",
        str(data_dir / "prompts.jsonl"),
        "--output_dir",
        str(ppo),
        "--steps",
        "2",
        "--batch_size",
        "8",
        "--mini_batch_size",
        "4",
        "--micro_batch_size",
        "4",
        "--max_new_tokens",
        "6",
        "--learning_rate",
        "1e-4",
    )
    gen_metrics = cli(
        "generate",
        "--model",
        str(ppo),
        "--dataset",
        str(data_dir / "prompts.jsonl"),
        "--output_dir",
        str(gen),
        "--num_samples",
        "2",
        "--max_new_tokens",
        "6",
    )

    assert rm_metrics["steps"] == 4 and "reward_bias" in rm_metrics
    assert ppo_metrics["steps"] == 2 and ppo_metrics["episodes"] == 16
    assert gen_metrics["prompts"] == 8
    for folder in (sft, rm, ppo):
        assert (folder / "metrics.json").exists() and (folder / "training_config.yaml").exists()
        assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
        assert (folder / "progress.jsonl").exists()
    lines = [json.loads(line) for line in (gen / "completions.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and all(len(line["completions"]) == 2 and line["model"] == "ppo" for line in lines)
