"""The quality pages: who sees what, the admin actions, and escaping of model and user text."""

import pytest
from django.urls import reverse

from labeling.models import Batch, LabelerQualification
from labeling.services.gold import gold_mark
from labeling.services.rankings import ranking_submit
from labeling.vocab import Split
from tests.factories import (
    BatchFactory,
    CompletionFactory,
    PromptFactory,
    UserFactory,
    assignment_for,
    scored,
)
from training.evaluation.batches import evaluation_batch_create
from training.models import ModelVersion

from .helpers import ids, rank, task_in, tiers_of

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.quality.urls")]

XSS = "<script>alert(1)</script>"


@pytest.fixture
def ranked(labeler, other_labeler):
    task = task_in()
    rank(task, labeler, "a b c d")
    rank(task, other_labeler, "b a c d")
    return task


def test_admins_see_every_labeler(client, batch_admin, ranked):
    client.force_login(batch_admin)
    page = client.get(reverse("quality:dashboard")).content.decode()
    assert 'id="labelers"' in page and "lab1" in page and "lab2" in page
    assert "83.3%" in page  # 5 of 6 pairs
    assert 'data-chart="chart-agreement"' in page and 'id="chart-agreement"' in page


def test_a_labeler_sees_only_their_own_numbers(client, labeler, ranked):
    client.force_login(labeler)
    page = client.get(reverse("quality:dashboard")).content.decode()
    assert "Your numbers" in page and 'id="labelers"' not in page and "lab2" not in page
    other = UserFactory(username="lab9").pk
    assert client.get(reverse("quality:labeler", args=[other])).status_code == 403
    assert client.get(reverse("quality:gold")).status_code == 403
    assert client.get(reverse("training:evaluations")).status_code == 403


def test_users_without_a_role_are_refused_and_anonymous_sent_to_login(client):
    client.force_login(UserFactory(username="nobody"))
    assert client.get(reverse("quality:dashboard")).status_code == 403
    client.logout()
    response = client.get(reverse("quality:dashboard"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_admin_marks_a_reference_ranking_and_sets_the_gold_rate(client, batch_admin):
    task = task_in(k=3)
    a, b, c = ids(task)
    client.force_login(batch_admin)
    url = reverse("quality:gold_task", args=[task.pk])
    client.post(
        url,
        {
            "action": "mark",
            f"t{task.pk}-place_{a}": 2,
            f"t{task.pk}-place_{b}": 1,
            f"t{task.pk}-place_{c}": 2,
        },
    )
    task.refresh_from_db()
    assert task.is_gold and task.gold_tiers == [[b], sorted([a, c])]
    response = client.post(
        reverse("quality:gold_settings", args=[task.batch_id]),
        {"gold_rate": "0.1", "qualification_threshold": "0.7"},
        follow=True,
    )
    assert "settings saved" in response.content.decode()
    assert Batch.objects.get(pk=task.batch_id).gold_rate == 0.1
    client.post(url, {"action": "unmark"})
    task.refresh_from_db()
    assert not task.is_gold


def test_researchers_may_look_but_not_change(client, researcher):
    task = task_in()
    client.force_login(researcher)
    assert client.get(reverse("quality:gold_batch", args=[task.batch_id])).status_code == 200
    assert client.post(reverse("quality:gold_task", args=[task.pk]), {"action": "unmark"}).status_code == 403
    assert client.post(reverse("quality:gold_settings", args=[task.batch_id]), {}).status_code == 403


def test_an_admin_approves_a_blocked_labeler(client, batch_admin, labeler):
    qualification = BatchFactory(name="Screening", is_qualification=True, qualification_threshold=0.9)
    qualification.labelers.add(labeler)
    task = task_in(qualification, k=3)
    gold_mark(task=task, tiers=tiers_of(task, "a b c"))
    rank(task, labeler, "c b a")
    client.force_login(batch_admin)
    page = client.get(reverse("quality:gold_batch", args=[qualification.pk])).content.decode()
    assert 'data-labeler="lab1"' in page and "failed" in page
    client.post(
        reverse("quality:qualification_decision", args=[qualification.pk, labeler.pk]),
        {"decision": "approved"},
    )
    assert LabelerQualification.objects.get(labeler=labeler).status == "approved"
    page = client.get(reverse("quality:gold_batch", args=[qualification.pk])).content.decode()
    assert "approved" in page
    for bad in ({}, {"decision": "maybe"}):  # refused, and the decision stays
        answer = client.post(
            reverse("quality:qualification_decision", args=[qualification.pk, labeler.pk]), bad, follow=True
        )
        assert "Choose a decision: approved, blocked, reset" in answer.content.decode()
        assert LabelerQualification.objects.get(labeler=labeler).status == "approved"


def test_model_and_user_text_is_escaped(client, batch_admin):
    prompt = PromptFactory(split=Split.TEST, text=f"prompt {XSS}")
    batch = evaluation_batch_create(
        name=f"eval {XSS}",
        external_sources=[f"m{XSS}", "m2"],
        outputs={prompt.pk: {f"m{XSS}": f"out {XSS}", "m2": "fine"}},
    )
    client.force_login(batch_admin)
    for url in (
        reverse("quality:gold_batch", args=[batch.pk]),
        reverse("training:evaluation", args=[batch.pk]),
        reverse("training:evaluations"),
        reverse("quality:gold"),
    ):
        page = client.get(url).content.decode()
        assert XSS not in page, url
    assert "&lt;script&gt;" in client.get(reverse("quality:gold_batch", args=[batch.pk])).content.decode()


def test_the_results_page_shows_win_rates_and_the_automatic_evaluation(client, researcher):
    base = ModelVersion.objects.create(name="base", kind="base", checkpoint="/m/b")
    sft = ModelVersion.objects.create(name="sft-1", kind="sft", parent=base, checkpoint="/m/s")
    ppo = ModelVersion.objects.create(
        name="ppo-1",
        kind="ppo",
        parent=sft,
        checkpoint="/m/p",
        metrics={"auto_eval": {"rm_win_rate": 0.625, "kl_to_sft": 1.5}},
    )
    prompts = [PromptFactory(split=Split.TEST) for _ in range(2)]
    batch = evaluation_batch_create(
        name="E", model_versions=[sft, ppo], outputs={p.pk: {"sft-1": "s", "ppo-1": "p"} for p in prompts}
    )
    lab = UserFactory(username="r1")
    for task in batch.tasks.all():
        by = {c.model_version.name: c.pk for c in task.completions.select_related("model_version")}
        ranking_submit(
            assignment=assignment_for(task, lab),
            tiers=[[by["ppo-1"]], [by["sft-1"]]],
            ratings=scored([[by["ppo-1"]], [by["sft-1"]]]),
        )
    client.force_login(researcher)
    page = client.get(reverse("training:evaluation", args=[batch.pk])).content.decode()
    assert 'id="results-overall"' in page and "100.0%" in page and "62.5%" in page
    assert 'id="auto-eval"' in page
    overview = client.get(reverse("training:evaluations")).content.decode()
    assert 'id="chart-rounds"' in overview and "ppo-1 vs sft-1" in overview


def test_a_batch_admin_creates_an_evaluation_batch_from_the_page(client, batch_admin):
    sft = ModelVersion.objects.create(
        name="sft-1",
        kind="sft",
        parent=ModelVersion.objects.create(name="base", kind="base", checkpoint="/b"),
        checkpoint="/s",
    )
    prompt = PromptFactory(split=Split.TEST)
    CompletionFactory(prompt=prompt, model_version=sft, source_name="")
    CompletionFactory(prompt=prompt, source_name="vendor-x")
    client.force_login(batch_admin)
    response = client.post(
        reverse("training:evaluations"),
        {
            "name": "Eval from page",
            "model_versions": [sft.pk],
            "external_sources": "vendor-x",
            "status": "active",
            "overlap": 3,
        },
    )
    batch = Batch.objects.get(name="Eval from page")
    assert response.status_code == 302 and batch.tasks.count() == 1 and batch.overlap == 3
    error = client.post(
        reverse("training:evaluations"),
        {"name": "x", "external_sources": "vendor-x", "status": "draft", "overlap": 1},
    )
    assert "2 to 9 models" in error.content.decode()
