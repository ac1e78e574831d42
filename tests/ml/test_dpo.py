from tests.ml.conftest import FAST
from training.ml import run_stage
from training.ml.checkpoints import read_history


def test_the_chosen_log_prob_margin_grows(sft_model, data_dir, tmp_path):
    config = {
        "model": str(sft_model),
        "dataset": str(data_dir / "pairs.jsonl"),
        "output_dir": str(tmp_path),
        "learning_rate": 1e-3,
        "max_steps": 10,
        "beta": 0.1,
        **FAST,
    }
    metrics = run_stage("dpo", config, echo=False)
    assert metrics["margin"] > metrics["margin_start"] + 1.0
    margins = [row["rewards/margins"] for row in read_history(tmp_path) if "rewards/margins" in row]
    assert margins[-1] > margins[0]
    assert (tmp_path / "model.safetensors").exists()


def test_it_accepts_rankings_as_every_non_tied_pair(sft_model, data_dir, tmp_path):
    config = {
        "model": str(sft_model),
        "dataset": str(data_dir / "rankings.jsonl"),
        "output_dir": str(tmp_path),
        "max_steps": 1,
        **FAST,
    }
    metrics = run_stage("dpo", config, echo=False)
    assert metrics["train_pairs"] > 3 * 96  # about 4-5 non-tied pairs per ranking of 4


def test_one_pair_per_ranking_gives_every_ranking_the_same_weight(sft_model, data_dir, tmp_path):
    config = {
        "model": str(sft_model),
        "dataset": str(data_dir / "rankings.jsonl"),
        "output_dir": str(tmp_path),
        "max_steps": 1,
        "num_train_epochs": 2,
        "pairs_per_ranking": "one",
        **FAST,
    }
    metrics = run_stage("dpo", config, echo=False)
    assert metrics["train_pairs"] == 2 * 96  # one pair of each of the 96 train rankings, drawn per epoch
