"""Evaluation batches and their results: win rates against a baseline, Likert means and flag rates,
by model and by category, worked out by hand."""

import pytest
from django.contrib.auth.models import Group

from core.errors import ServiceError
from core.roles import ROLE_LABELER
from labeling.models import Batch, Completion
from labeling.services.rankings import ranking_submit
from labeling.vocab import Category, Split
from tests.factories import CompletionFactory, PromptFactory, assignment_for
from training.evaluation.batches import evaluation_batch_create
from training.evaluation.winrate import evaluation_results
from training.models import ModelVersion

from .helpers import labelers

pytestmark = pytest.mark.django_db


@pytest.fixture
def models():
    base = ModelVersion.objects.create(name="base", kind="base", checkpoint="/m/base")
    sft = ModelVersion.objects.create(name="sft-1", kind="sft", parent=base, checkpoint="/m/sft")
    ppo = ModelVersion.objects.create(
        name="ppo-1",
        kind="ppo",
        parent=sft,
        checkpoint="/m/ppo",
        metrics={"auto_eval": {"rm_win_rate": 0.61, "kl_to_sft": 3.2}},
    )
    return base, sft, ppo


def test_an_evaluation_batch_takes_one_existing_output_per_model_on_test_prompts(models):
    _, sft, ppo = models
    test = [PromptFactory(split=Split.TEST) for _ in range(3)]
    train = PromptFactory(split=Split.TRAIN)
    for p in test[:2] + [train]:
        CompletionFactory(prompt=p, model_version=sft, source_name="")
        CompletionFactory(prompt=p, model_version=ppo, source_name="")
    CompletionFactory(prompt=test[2], model_version=sft, source_name="")  # no ppo output: left out
    batch = evaluation_batch_create(name="Eval 1", model_versions=[sft, ppo.pk], created_by=None)
    assert batch.kind == Batch.Kind.EVALUATION and batch.status == Batch.Status.DRAFT
    assert sorted(batch.tasks.values_list("prompt", flat=True)) == [test[0].pk, test[1].pk]
    for task in batch.tasks.all():
        sources = sorted(task.completions.values_list("model_version__name", flat=True))
        assert sources == ["ppo-1", "sft-1"] and task.k == 2
    assert Group.objects.get(name=ROLE_LABELER) in batch.groups.all()


def test_outputs_can_be_passed_in_for_versions_and_external_models(models):
    _, sft, _ = models
    prompts = [PromptFactory(split=Split.TEST) for _ in range(10)]
    outputs = {p.pk: {"sft-1": f"sft answer {p.pk}", "gpt-x": f"external answer {p.pk}"} for p in prompts}
    batch = evaluation_batch_create(
        name="Eval 2", model_versions=[sft], external_sources=["gpt-x"], outputs=outputs
    )
    assert batch.tasks.count() == 10
    external = Completion.objects.get(prompt=prompts[0], source_name="gpt-x")
    assert external.text == f"external answer {prompts[0].pk}" and external.model_version is None
    first = [t.task_completions.first().completion.source_name for t in batch.tasks.all()]
    assert "gpt-x" in first and "" in first  # outputs appear in random order


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"model_versions": []}, "2 to 9 models"),
        ({"external_sources": ["only-one"]}, "2 to 9 models"),
        ({"external_sources": ["a", "b"]}, "no prompt has an output from every model"),
        ({"external_sources": ["a", "b"], "outputs": {0: {"c": "x"}}}, "'c' is not one of the models"),
        ({"name": " ", "external_sources": ["a", "b"]}, "name"),
    ],
)
def test_evaluation_batch_errors_say_what_to_fix(kwargs, message):
    PromptFactory(split=Split.TEST)
    with pytest.raises(ServiceError, match=message):
        evaluation_batch_create(**{"name": "Eval", **kwargs})
    assert not Batch.objects.exists()


def _rank(task, labeler, spec: list[list[str]], likert: dict, flags: dict | None = None):
    """spec: tiers of source keys, e.g. [["ppo-1"], ["sft-1", "gpt-x"]]."""
    cid = {}
    for c in task.completions.select_related("model_version"):
        cid[c.model_version.name if c.model_version else c.source_name] = c.pk
    ratings = {cid[k]: {"likert": likert[k], "flags": (flags or {}).get(k, {})} for k in cid}
    ranking_submit(
        assignment=assignment_for(task, labeler),
        tiers=[[cid[k] for k in tier] for tier in spec],
        ratings=ratings,
    )


@pytest.fixture
def judged(models):
    """4 prompts (2 generation, 2 open QA), 2 labelers each. ppo vs sft: T1 1,1  T2 0.5,0  T3 1,1  T4 0,0
    = 4.5/8; gpt-x vs sft: all losses but one tie = 0.5/8. Likert: ppo 6 (L1) and 4 (L2), sft 4."""
    _, sft, ppo = models
    cats = [Category.GENERATION, Category.GENERATION, Category.OPEN_QA, Category.OPEN_QA]
    prompts = [PromptFactory(split=Split.TEST, category=c) for c in cats]
    outputs = {p.pk: {"sft-1": "s", "ppo-1": "p", "gpt-x": "x"} for p in prompts}
    batch = evaluation_batch_create(
        name="Eval", model_versions=[ppo, sft], external_sources=["gpt-x"], outputs=outputs, overlap=2
    )
    l1, l2 = labelers(2)
    t1, t2, t3, t4 = batch.tasks.order_by("prompt_id")
    like1 = {"ppo-1": 6, "sft-1": 4, "gpt-x": 2}
    like2 = {"ppo-1": 4, "sft-1": 4, "gpt-x": 2}
    x_flag = {"gpt-x": {"hallucination": True}}
    _rank(t1, l1, [["ppo-1"], ["sft-1"], ["gpt-x"]], like1, {**x_flag, "ppo-1": {"hallucination": True}})
    _rank(t1, l2, [["ppo-1"], ["sft-1"], ["gpt-x"]], like2, x_flag)
    _rank(t2, l1, [["ppo-1", "sft-1"], ["gpt-x"]], like1, x_flag)
    _rank(t2, l2, [["sft-1"], ["ppo-1"], ["gpt-x"]], like2, x_flag)
    _rank(t3, l1, [["ppo-1"], ["sft-1", "gpt-x"]], like1, x_flag)
    _rank(t3, l2, [["ppo-1"], ["sft-1"], ["gpt-x"]], like2, x_flag)
    _rank(t4, l1, [["sft-1"], ["ppo-1"], ["gpt-x"]], like1, x_flag)
    _rank(t4, l2, [["sft-1"], ["gpt-x"], ["ppo-1"]], like2, x_flag)
    return batch


def test_win_rates_likert_and_flags_by_hand(judged):
    results = evaluation_results(batch=judged)
    assert results.baseline.key == "sft-1"  # the SFT model is the default baseline
    by = {r.source.key: r for r in results.overall}
    assert by["ppo-1"].win_rate.value == pytest.approx(4.5 / 8)
    assert (by["ppo-1"].wins, by["ppo-1"].ties, by["ppo-1"].losses) == (4, 1, 3)
    assert by["gpt-x"].win_rate.value == pytest.approx(0.5 / 8)
    assert by["sft-1"].win_rate is None
    assert by["ppo-1"].likert.value == 5.0 and by["sft-1"].likert.value == 4.0
    assert by["gpt-x"].flags["hallucination"].value == 1.0
    assert by["ppo-1"].flags["hallucination"].value == pytest.approx(1 / 8)
    assert by["ppo-1"].auto_eval == {"rm_win_rate": 0.61, "kl_to_sft": 3.2}
    assert results.tasks == 4 and results.rankings == 8
    cats = {c: {r.source.key: r for r in rs} for c, rs in results.by_category.items()}
    assert cats["generation"]["ppo-1"].win_rate.value == pytest.approx(2.5 / 4)
    assert cats["open_qa"]["ppo-1"].win_rate.value == pytest.approx(2 / 4)


def test_another_baseline_can_be_chosen(judged):
    by = {r.source.key: r for r in evaluation_results(batch=judged, baseline="ppo-1").overall}
    assert by["sft-1"].win_rate.value == pytest.approx(1 - 4.5 / 8)
    with pytest.raises(ServiceError, match="not one of the models"):
        evaluation_results(batch=judged, baseline="nope")
