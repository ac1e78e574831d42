"""The paper's settings by name: every shipped recipe loads into its stage, says what the paper says, and lies
under the config file and the command line."""

import json

import pytest

from tests.ml.test_ppo import ppo_config
from training.ml import run_stage
from training.ml.cli import main
from training.ml.config import load_config
from training.ml.errors import ConfigError
from training.ml.recipes import recipes


def test_every_recipe_loads_into_its_stage():
    assert {r.stage for r in recipes().values()} == {"sft", "rm", "ppo", "dpo"}
    for name, shipped in recipes().items():
        cfg = load_config(
            shipped.stage, overrides={"model": "m", "dataset": "d", "output_dir": "o", "recipe": name}
        )
        assert cfg.recipe == name
        assert {key: getattr(cfg, key) for key in shipped.settings} == shipped.settings


def test_the_recipes_say_what_the_paper_says():
    rm = load_config(
        "rm", overrides={"model": "m", "dataset": "d", "output_dir": "o", "recipe": "instructgpt-rm"}
    )
    assert (rm.learning_rate, rm.num_train_epochs, rm.min_lr_ratio) == (9e-6, 1, 0.1)
    assert rm.per_device_train_batch_size * rm.gradient_accumulation_steps == 64
    ppo = recipes()["instructgpt-ppo-ptx"].settings
    assert (ppo["kl_coef"], ppo["batch_size"], ppo["mini_batch_size"], ppo["ema_decay"]) == (
        0.02,
        512,
        64,
        0.992,
    )
    assert (
        ppo["ptx_ratio"] == 8
        and ppo["ptx_coef"] > 0
        and recipes()["instructgpt-ppo"].settings["ptx_coef"] == 0
    )
    assert recipes()["instructgpt-sft"].settings["num_train_epochs"] == 16


def test_a_config_file_and_the_command_line_win_over_the_recipe(tmp_path):
    file = tmp_path / "rm.yaml"
    file.write_text("recipe: instructgpt-rm\nlearning_rate: 1.0e-5\nnum_train_epochs: 2\n")
    cfg = load_config("rm", file, {"model": "m", "dataset": "d", "output_dir": "o", "num_train_epochs": "3"})
    assert (cfg.learning_rate, cfg.num_train_epochs, cfg.min_lr_ratio) == (1e-5, 3.0, 0.1)


def test_an_unknown_recipe_or_one_of_another_stage_is_refused_by_name():
    with pytest.raises(
        ConfigError, match="unknown recipe 'paper'; the ppo recipes are: instructgpt-ppo, instructgpt-ppo-ptx"
    ):
        load_config("ppo", overrides={"model": "m", "dataset": "d", "output_dir": "o", "recipe": "paper"})
    with pytest.raises(ConfigError, match="is for the rm stage, not sft"):
        load_config(
            "sft", overrides={"model": "m", "dataset": "d", "output_dir": "o", "recipe": "instructgpt-rm"}
        )


def test_the_command_line_lists_the_recipes(capsys):
    assert main(["recipes"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in recipes())


def test_a_ptx_weight_of_zero_reads_no_ptx_data(sft_model, rm_run, data_dir, tmp_path):
    """The PPO recipe without ptx sets ptx_coef 0; the server still names the demonstrations as ptx data."""
    events = []
    config = ppo_config(
        sft_model, data_dir, tmp_path, steps=1, reward_model=str(rm_run[0]),
        ptx_dataset=str(data_dir / "sft.jsonl"), ptx_coef=0.0,
    )  # fmt: skip
    run_stage("ppo", config, progress=events.append, echo=False)
    assert "ptx/grad_norm" not in events[0]["metrics"] and "ptx_loss" not in json.dumps(events[0]["metrics"])
