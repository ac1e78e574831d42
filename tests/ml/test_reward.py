import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from tests.ml.conftest import FAST
from training.ml import run_stage
from training.ml.checkpoints import read_config
from training.ml.data import preference_groups
from training.ml.render import Renderer
from training.ml.reward import RankingCollator, grouped_scores, listwise_loss
from training.ml.reward_model import reward_bias, score_pairs

TEMPLATE = "{prompt}\n"
RANKING = {
    "prompt": "What does the cat do?",
    "completions": [
        "The cat runs. It is happy.",
        "The cat eats.",
        "The cat sleeps.",
        "The cat sings. It is happy. It is happy.",
    ],
    "ranks": [1, 2, 2, 0],
}
ALL_TIED = {
    "prompt": "What does the dog do?",
    "completions": ["The dog runs.", "The dog eats."],
    "ranks": [0, 0],
}


@pytest.fixture(scope="module")
def rm(rm_run):
    folder = rm_run[0]
    return AutoModelForSequenceClassification.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(
        folder
    )


def batch_loss(model, tokenizer, rankings, normalization="pairs"):
    batch = RankingCollator(Renderer(tokenizer, TEMPLATE), 128)(preference_groups(rankings))
    with torch.no_grad():
        scores = grouped_scores(model, batch)
        return listwise_loss(scores, batch["better"], batch["sizes"], normalization)[0].item()


def loss_of(scores, ranks, normalization="pairs"):
    """The listwise loss of score rows (B, K) under rankings given as rank rows (-1: no completion)."""
    rows = [
        {
            "prompt": "p",
            "completions": [str(k) for k, r in enumerate(row) if r >= 0],
            "ranks": [r for r in row if r >= 0],
        }
        for row in ranks.tolist()
    ]
    groups = preference_groups(rows)
    better = torch.zeros(len(groups), scores.shape[1], scores.shape[1], dtype=torch.bool)
    for b, group in enumerate(groups):
        for w, lo in group["pairs"]:
            better[b, w, lo] = True
    sizes = torch.tensor([float(len(g["completions"])) for g in groups])
    return listwise_loss(scores, better, sizes, normalization)


def test_held_out_accuracy_is_well_above_chance(rm_run):
    metrics = rm_run[1]
    assert metrics["valid_rankings"] > 10 and metrics["eval_pairs"] > 40
    assert metrics["eval_accuracy"] > 0.85
    assert metrics["eval_log_loss"] < 0.5


def test_the_listwise_loss_is_the_mean_of_the_pairwise_losses(rm):
    model, tokenizer = rm
    pair_losses = []
    for i, (a, rank_a) in enumerate(zip(RANKING["completions"], RANKING["ranks"], strict=True)):
        for b, rank_b in list(zip(RANKING["completions"], RANKING["ranks"], strict=True))[i + 1 :]:
            if rank_a == rank_b:
                continue
            better, worse = (a, b) if rank_a < rank_b else (b, a)
            scores = score_pairs(
                model,
                Renderer(tokenizer, TEMPLATE),
                [(RANKING["prompt"], better), (RANKING["prompt"], worse)],
            )
            pair_losses.append(-F.logsigmoid(scores[0] - scores[1]).item())
    assert len(pair_losses) == 5  # C(4,2) = 6 pairs, one of them tied
    assert batch_loss(model, tokenizer, [RANKING]) == pytest.approx(sum(pair_losses) / 5, rel=1e-4)
    paper = batch_loss(model, tokenizer, [RANKING], normalization="all_pairs")
    assert paper == pytest.approx(sum(pair_losses) / 6, rel=1e-4)  # the paper's 1 / C(K,2)


def test_tied_pairs_do_not_change_the_loss(rm):
    model, tokenizer = rm
    alone = batch_loss(model, tokenizer, [RANKING])
    assert batch_loss(model, tokenizer, [RANKING, ALL_TIED]) == pytest.approx(alone, rel=1e-5)
    scores = torch.tensor([[2.0, 1.0, 5.0]])
    tie_moved = torch.tensor([[2.0, 1.0, -7.0]])  # the third completion ties with the second
    ranks = torch.tensor([[0, 1, 1]])
    assert loss_of(scores, ranks)[0].item() != loss_of(tie_moved, ranks)[0].item()
    only_ties = torch.tensor([[0, 0, -1]])
    assert loss_of(scores.requires_grad_(), only_ties)[0].item() == 0.0


def test_the_listwise_loss_averages_prompts_not_pairs():
    scores = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    ranks = torch.tensor([[0, 1, 2], [0, 1, -1]])  # 3 pairs and 1 pair
    first = (-F.logsigmoid(torch.tensor([1.0, 1.0, 0.0]))).mean()
    second = -F.logsigmoid(torch.tensor(-1.0))
    assert loss_of(scores, ranks)[0].item() == pytest.approx(((first + second) / 2).item())


def test_training_changed_the_parameters_and_kept_a_scalar_head(sft_model, rm):
    model, _ = rm
    sft = AutoModelForCausalLM.from_pretrained(sft_model)
    assert model.config.num_labels == 1
    assert not torch.allclose(model.transformer.h[0].mlp.c_fc.weight, sft.transformer.h[0].mlp.c_fc.weight)


def test_the_bias_centres_the_best_completions_on_zero(rm_run, rm, data_dir):
    folder, metrics = rm_run
    model, tokenizer = rm
    assert read_config(folder)["reward_bias"] == pytest.approx(metrics["reward_bias"])
    assert reward_bias(model) == pytest.approx(metrics["reward_bias"])
    import json

    best = []
    for line in (data_dir / "rankings.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["split"] == "train":
            top = min(row["ranks"])
            best += [
                (row["prompt"], c) for c, r in zip(row["completions"], row["ranks"], strict=True) if r == top
            ]
    centred = score_pairs(model, Renderer(tokenizer, TEMPLATE), best) + reward_bias(model)
    assert abs(centred.mean().item()) < 1e-3


def test_it_trains_on_pairs_and_centres_on_demonstrations(sft_model, data_dir, tmp_path):
    config = {
        "model": str(sft_model),
        "dataset": str(data_dir / "pairs.jsonl"),
        "output_dir": str(tmp_path),
        "demonstrations": str(data_dir / "sft.jsonl"),
        "learning_rate": 1e-3,
        "max_steps": 6,
        **FAST,
    }
    metrics = run_stage("rm", config, echo=False)
    assert metrics["steps"] == 6 and metrics["eval_pairs"] == metrics["valid_rankings"]
    assert metrics["reward_bias"] != 0.0


def test_a_score_tie_counts_half_in_training_as_in_evaluation():
    from training.ml.reward_model import pairwise_accuracy

    _, accuracy = loss_of(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([[0, 1, 2]]))
    assert accuracy.item() == pytest.approx((0.5 + 1 + 1) / 3)
    assert pairwise_accuracy(torch.tensor([0.0, 1.0, 1.0])).item() == pytest.approx(accuracy.item())
