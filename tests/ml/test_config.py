import subprocess
import sys
from pathlib import Path

import pytest

from training.ml.cli import main
from training.ml.config import PPOConfig, load_config
from training.ml.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
BASE = {"model": "m", "dataset": "d.jsonl", "output_dir": "out"}


def test_overrides_are_coerced_to_the_field_types(tmp_path):
    path = tmp_path / "rm.yaml"
    path.write_text("model: sft\ndataset: r.jsonl\noutput_dir: out\nlearning_rate: 1e-4\nresume: false\n")
    cfg = load_config(
        "rm",
        path,
        {"num_train_epochs": "2", "learning_rate": "3e-5", "extra_args": '{"optim": "adamw_torch"}'},
    )
    assert cfg.learning_rate == 3e-5 and cfg.num_train_epochs == 2.0 and cfg.resume is False
    assert cfg.extra_args == {"optim": "adamw_torch"}


def test_an_unknown_key_names_the_key_and_a_close_match():
    with pytest.raises(
        ConfigError, match=r"unknown config key 'kl_coeff' for stage 'ppo'; did you mean 'kl_coef'\?"
    ):
        load_config("ppo", None, {**BASE, "kl_coeff": "0.1"})


def test_a_bad_value_names_the_key_and_type():
    with pytest.raises(ConfigError, match=r"config key 'steps' must be int, got 'many'"):
        load_config("ppo", None, {**BASE, "steps": "many"})


def test_optional_fields_accept_none():
    cfg = load_config("ppo", None, {**BASE, "value_learning_rate": "none", "missing_eos_penalty": "1.5"})
    assert isinstance(cfg, PPOConfig) and cfg.value_learning_rate is None and cfg.missing_eos_penalty == 1.5


def test_the_cli_reports_an_unknown_key(capsys):
    assert main(["sft", "--lerning_rate", "1e-3", "--output_dir", "x"]) == 2
    assert "unknown config key 'lerning_rate'" in capsys.readouterr().err


def test_the_cli_reports_an_unknown_key_from_a_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "training.ml", "rm", "--output_dir", str(tmp_path), "--bogus", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert "unknown config key 'bogus' for stage 'rm'" in proc.stderr


def test_the_cli_reports_a_bad_dataset_line(tmp_path, tiny_model, capsys):
    bad = tmp_path / "sft.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "a"}\n')
    code = main(
        ["sft", "--model", str(tiny_model), "--dataset", str(bad), "--output_dir", str(tmp_path / "o")]
    )
    assert code == 2
    assert "line 2: field 'completion' must be a string, got nothing" in capsys.readouterr().err


def test_help_lists_every_field_with_its_help(capsys):
    assert main(["ppo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--kl_coef (float, default 0.02)" in out and "--ptx_coef (float, default 0.2)" in out


def test_a_renamed_key_says_what_replaced_it():
    with pytest.raises(ConfigError, match="'ptx_batch_size' is gone; use ptx_ratio"):
        load_config("ppo", overrides={"model": "m", "dataset": "d", "output_dir": "o", "ptx_batch_size": 8})
