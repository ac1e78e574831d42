"""The whole way round: import -> label (through the services) -> export -> load with `datasets` ->
one training step of TRL's RewardTrainer, DPOTrainer and SFTTrainer on a tiny local model.
Nothing is downloaded: the model and its tokenizer are built here (training.ml.tiny)."""

import io
import json

import pytest

from labeling.handout.next import assignment_next
from labeling.models import Batch
from labeling.services.demonstrations import demonstration_submit
from labeling.services.exports import snapshot_create, snapshot_path
from labeling.services.imports import completions_import, prompts_import
from labeling.services.rankings import ranking_submit
from tests.factories import scored

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ANIMALS = ["cat", "dog", "bird", "fish", "horse", "mouse"]


def jsonl(rows) -> io.BytesIO:
    return io.BytesIO(b"".join((json.dumps(r) + "\n").encode() for r in rows))


def work_through(batch: Batch, labelers, submit) -> int:
    done = 0
    for labeler in labelers:
        while (assignment := assignment_next(labeler=labeler, batch=batch)) is not None:
            submit(assignment)
            done += 1
    return done


def rank_longest_first(assignment) -> None:
    texts = dict(assignment.task.task_completions.values_list("completion_id", "completion__text"))
    order = sorted(texts, key=lambda cid: (-len(texts[cid]), cid))
    ranking_submit(
        assignment=assignment,
        tiers=[[cid] for cid in order],
        seconds_spent=12,
        ratings=scored([[cid] for cid in order]),
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from training.ml.tiny import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("tiny"), n_layer=1, n_embd=32, n_head=2, vocab_size=300, n_positions=128
    )


def load(snapshot, cache_dir):
    from datasets import load_dataset

    return load_dataset(
        "json", data_files=str(snapshot_path(snapshot)), split="train", cache_dir=str(cache_dir)
    )


def changed(model, train) -> bool:
    import torch

    before = [p.detach().clone() for p in model.parameters()]
    train()
    return any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_import_label_export_train(settings, tmp_path, tiny_model, labeler, other_labeler, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings.MEDIA_ROOT = tmp_path / "media"
    pair = [labeler, other_labeler]

    # Import: prompts become a demonstration batch; outputs from elsewhere become a ranking batch.
    prompts = [
        {"text": f"What colour is the {a}?", "category": "open_qa", "origin_user": f"user-{a}"}
        for a in ANIMALS
    ]
    demos = prompts_import(
        file=jsonl(prompts), format="jsonl", demonstration_batch={"name": "demos", "labelers": pair}
    ).batch
    outputs = [
        {
            "prompt": f"What colour is the {a}?",
            "model": "elsewhere",
            "completions": [f"The {a} is red and very good.", f"The {a} is blue.", "no"],
        }
        for a in ANIMALS
    ]
    ranks = completions_import(
        file=jsonl(outputs), batch={"name": "ranks", "labelers": pair, "overlap": 2}
    ).batch

    # Label through the same services the workspace uses.
    assert (
        work_through(
            demos,
            pair,
            lambda a: demonstration_submit(
                assignment=a, text=f"The answer to '{a.task.prompt.text}' is: it is red.", seconds_spent=30
            ),
        )
        == 6
    )
    assert work_through(ranks, pair, rank_longest_first) == 12

    # Export: every kind, with the rows the trainers need.
    snaps = {
        kind: snapshot_create(kind=kind, filters={}) for kind in ("sft", "rm_pairs", "rm_rankings", "prompts")
    }
    assert [snaps[k].row_count for k in ("sft", "rm_pairs", "rm_rankings", "prompts")] == [6, 36, 12, 6]
    consensus = snapshot_create(kind="rm_rankings", filters={"rankings": "consensus"})
    assert consensus.row_count == 6
    assert (
        snapshot_create(kind="rm_pairs", filters={}).sha256 == snaps["rm_pairs"].sha256
    )  # same data, same bytes

    cache = tmp_path / "hf"
    pairs, sft = load(snaps["rm_pairs"], cache), load(snaps["sft"], cache)
    assert {"prompt", "chosen", "rejected", "prompt_id", "task_id", "ranking_id", "labeler", "split"} <= set(
        pairs.column_names
    )
    assert load(consensus, cache)[0]["ranks"] == [0, 1, 2]
    assert load(snaps["prompts"], cache).num_rows == 6

    # One step of each trainer, straight from the loaded datasets.
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer, SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    common = {
        "output_dir": str(tmp_path / "out"),
        "max_steps": 1,
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-2,
        "report_to": [],
        "save_strategy": "no",
        "use_cpu": True,
        "disable_tqdm": True,
    }

    reward_model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    assert changed(
        reward_model,
        lambda: RewardTrainer(
            model=reward_model,
            args=RewardConfig(**common, max_length=96),
            train_dataset=pairs,
            processing_class=tokenizer,
        ).train(),
    )
    policy = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert changed(
        policy,
        lambda: DPOTrainer(
            model=policy,
            args=DPOConfig(**common, max_length=96),
            train_dataset=pairs,
            processing_class=tokenizer,
        ).train(),
    )
    policy = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert changed(
        policy,
        lambda: SFTTrainer(
            model=policy,
            args=SFTConfig(**common, max_length=96),
            train_dataset=sft,
            processing_class=tokenizer,
        ).train(),
    )
