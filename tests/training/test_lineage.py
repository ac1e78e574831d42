"""A model's lineage names exactly the snapshots its run trained on and the batches whose labels they hold:
two rounds run inline, then every model's lineage is checked."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from labeling.models import Batch, Comparison, Ranking
from labeling.services.demonstrations import demonstration_submit
from labeling.services.rankings import ranking_submit
from tests.factories import assignment_for, scored
from training.models import ModelVersion, RoundStatus, TrainingRun
from training.services.registry import batches_behind, lineage, snapshots_held
from training.services.rounds import round_start

from .conftest import FAST_STAGES

pytestmark = pytest.mark.django_db
ZERO_POINT = "demonstrations: the reward's zero point (their mean reward is set to 0)"


def fast(**config):
    return {"stage_config": FAST_STAGES, "prompt_limit": 2, "k": 2, **config}


def run_round(method):
    rnd = round_start(method=method, config=fast())
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SUCCEEDED, rnd.error
    return rnd, {k: ModelVersion.objects.get(pk=v) for k, v in rnd.state["models"].items()}


def held(model):
    """{snapshot kind: (role, {batch name: rows}, rows from no batch)} of the model's own snapshots."""
    return {
        h.snapshot.kind: (h.role, {b.name: n for b, n in h.batches}, h.outside_batches)
        for h in snapshots_held(model)
    }


def test_each_model_of_two_rounds_has_exactly_its_own_batches_behind_it(
    media, demo_data, inline_tasks, client, researcher
):
    labeler = get_user_model().objects.get(username="labeler")
    demos = Batch.objects.get(name="Demo: write demonstrations")
    rank0 = Batch.objects.get(name="Demo: rank outputs (round 0)")
    Batch.objects.get(name="Demo: write prompts")  # holds no labels: never behind a model
    demonstration_submit(
        assignment=assignment_for(demos.tasks.order_by("pk").first(), labeler),
        text="Written.",
        seconds_spent=9,
    )
    rankings0 = Ranking.objects.filter(task__batch=rank0, task__prompt__pii_flag=False).count()

    first, one = run_round("ppo")
    outside = one["sft"].snapshots.get().row_count - 1  # the demo's own demonstrations: written in no batch
    assert held(one["sft"]) == {"sft": ("training data", {demos.name: 1}, outside)}
    assert held(one["rm"]) == {
        "rm_rankings": ("training data", {rank0.name: rankings0}, 0),
        "sft": (ZERO_POINT, {demos.name: 1}, outside),
    }
    assert held(one["policy"]) == {
        "prompts": ("training data", {}, held(one["policy"])["prompts"][2]),
        "sft": ("demonstrations: the pretraining mix (ptx)", {demos.name: 1}, outside),
    }
    assert batches_behind(one["sft"]) == [demos]
    assert batches_behind(one["rm"]) == [demos, rank0]
    assert batches_behind(one["policy"]) == [demos]  # its reward model's batches are the reward model's
    base = one["sft"].parent
    assert lineage(one["policy"]) == [one["policy"], one["rm"], one["sft"], base]
    assert lineage(one["sft"]) == [one["sft"], base] and batches_behind(base) == []

    # Round 1's batch gets a ranking; round 2 (DPO) learns from it, round 1's models do not.
    task = first.batch.tasks.order_by("pk").first()
    a, b = task.task_completions.values_list("completion_id", flat=True)
    ranking_submit(assignment=assignment_for(task, labeler), tiers=[[a], [b]], ratings=scored([[a], [b]]))
    second, two = run_round("dpo")
    assert held(two["sft"]) == {"sft": ("training data", {demos.name: 1}, outside)}
    # Round 1's reward model picked round 2's SFT epoch (InstructGPT's choice of SFT model); it is not
    # training data, so not in the lineage.
    sft_run = TrainingRun.objects.get(round=second, kind="sft")
    assert sft_run.reward_model == one["rm"] and "selected_reward" in sft_run.metrics
    assert TrainingRun.objects.get(round=first, kind="sft").reward_model is None
    pairs0 = Comparison.objects.filter(batch=rank0, prompt__pii_flag=False).count()
    assert held(two["policy"]) == {
        "rm_pairs": ("training data", {rank0.name: pairs0, first.batch.name: 1}, 0)
    }
    assert batches_behind(two["policy"]) == [rank0, first.batch]
    for model in one.values():
        assert first.batch not in batches_behind(model) and second.batch not in batches_behind(model)

    client.force_login(researcher)
    page = client.get(reverse("training:model", args=[two["policy"].pk])).content.decode()
    behind = page.split("Labeling batches behind it")[1]
    assert first.batch.name in behind and rank0.name in behind and demos.name not in behind
    assert "Demo: write prompts" not in page
