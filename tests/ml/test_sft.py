import difflib
import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.ml.conftest import FAST
from training.ml import TrainingCancelled, run_stage
from training.ml.checkpoints import last_checkpoint, read_config, read_history, read_metrics


def greedy(folder, prompt: str) -> str:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_the_loss_falls(sft_run):
    out, metrics = sft_run
    assert metrics["eval_loss"] < metrics["eval_loss_start"] - 1.0
    losses = [row["loss"] for row in read_history(out) if "loss" in row]
    assert losses[-1] < losses[0] - 1.0


def test_greedy_output_moves_towards_the_demonstration(tiny_model, sft_model):
    prompt, completion = "What colour is the cat?\n", "The cat is red."
    before = difflib.SequenceMatcher(None, greedy(tiny_model, prompt), completion).ratio()
    after = difflib.SequenceMatcher(None, greedy(sft_model, prompt), completion).ratio()
    assert after > before + 0.3


def test_the_output_folder_holds_model_config_and_metrics(sft_model):
    assert (sft_model / "model.safetensors").exists() and (sft_model / "tokenizer.json").exists()
    assert read_config(sft_model)["stage"] == "sft" and read_config(sft_model)["learning_rate"] == 3e-3
    assert (sft_model / "training_config.yaml").exists()
    assert set(read_metrics(sft_model)) >= {"train_loss", "eval_loss", "steps"}


def test_a_cancelled_run_resumes_from_its_checkpoint(tiny_model, data_dir, tmp_path):
    config = {
        "model": str(tiny_model),
        "dataset": str(data_dir / "sft.jsonl"),
        "output_dir": str(tmp_path),
        "max_steps": 4,
        **FAST,
    }
    events = []
    with pytest.raises(TrainingCancelled) as cancelled:
        run_stage(
            "sft", config, progress=events.append, should_stop=lambda: events[-1]["step"] >= 2, echo=False
        )
    assert cancelled.value.step == 2
    assert last_checkpoint(tmp_path).name == "checkpoint-2"
    assert (last_checkpoint(tmp_path) / "training_config.yaml").exists()  # the config beside every checkpoint
    # Step 0 of 4 comes first (a run page shows its total before the first step), then one event a step.
    assert (
        [e["step"] for e in events] == [0, 1, 2]
        and events[0]["total"] == 4
        and "loss" in events[-1]["metrics"]
    )

    resumed = []
    metrics = run_stage("sft", config, progress=resumed.append, echo=False)
    assert [e["step"] for e in resumed][:3] == [2, 3, 4]  # from the checkpoint's step on
    assert metrics["steps"] == 4


def test_a_checkpoint_cut_off_while_saving_is_not_resumed_from(tmp_path):
    from training.ml.checkpoints import last_checkpoint

    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-6").mkdir()  # the worker died before trainer_state.json was written
    (tmp_path / "checkpoint-6" / "model.safetensors").write_bytes(b"partial")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-4"


def test_the_reward_model_picks_the_epoch_that_is_kept(tiny_model, data_dir, rm_run, tmp_path):
    """InstructGPT keeps the SFT epoch whose valid samples its reward model scores best, not the last one."""
    from training.ml.checkpoints import read_history as history_of
    from training.ml.progress import Reporter
    from training.ml.render import Renderer
    from training.ml.runtime import load_causal_lm, load_tokenizer
    from training.ml.selection import RewardSelection

    config = {
        "model": str(tiny_model),
        "dataset": str(data_dir / "sft.jsonl"),
        "output_dir": str(tmp_path),
        "learning_rate": 3e-3,
        "num_train_epochs": 3,
        "selection_reward_model": str(rm_run[0]),
        "selection_prompts": 6,
        "selection_max_new_tokens": 8,
        **FAST,
    }
    metrics = run_stage("sft", config, echo=False)
    per_epoch = {
        row["epoch"]: row["eval_select_reward"] for row in history_of(tmp_path) if "eval_select_reward" in row
    }
    assert set(per_epoch) >= {1.0, 2.0, 3.0}
    best = max((e for e in per_epoch if e > 0), key=per_epoch.get)
    assert metrics["selected_epoch"] == best and metrics["selected_reward"] == pytest.approx(per_epoch[best])
    tokenizer = load_tokenizer(str(tmp_path))
    rows = [json.loads(line) for line in (data_dir / "sft.jsonl").read_text().splitlines()]
    valid = [r["prompt"] for r in rows if r["split"] == "valid"][:6]
    again = RewardSelection(
        str(rm_run[0]),
        valid,
        Renderer(tokenizer),
        None,
        max_new_tokens=8,
        max_prompt_length=504,
        seed=0,
        precision="no",
        reporter=Reporter(echo=False),
    )
    assert again.mean_reward(load_causal_lm(str(tmp_path), trainable=False)) == pytest.approx(
        per_epoch[best], abs=1e-4
    )


def test_no_selection_prompts_turns_the_selection_off(tiny_model, data_dir, tmp_path):
    """{"selection_prompts": 0}: a round's SFT step keeps its last epoch even with an earlier round's reward
    model given (the folder is not even read: here it does not exist)."""
    from training.ml.checkpoints import read_history as history_of

    config = {
        "model": str(tiny_model),
        "dataset": str(data_dir / "sft.jsonl"),
        "output_dir": str(tmp_path),
        "selection_reward_model": str(tmp_path / "no-such-reward-model"),
        "selection_prompts": 0,
        **FAST,
    }
    metrics = run_stage("sft", config, echo=False)
    assert "selected_epoch" not in metrics and metrics["steps"] > 0
    assert not [row for row in history_of(tmp_path) if "eval_select_reward" in row]
