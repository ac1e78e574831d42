"""The read-only quality API: who may read what, and what it says."""

import pytest
from django.urls import reverse

from labeling.services.rankings import ranking_submit
from labeling.vocab import Split
from tests.factories import PromptFactory, assignment_for, scored
from training.evaluation.batches import evaluation_batch_create

from .helpers import labelers, rank, task_in

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.quality.urls")]


@pytest.fixture
def ranked(labeler, other_labeler):
    task = task_in()
    rank(task, labeler, "a b c d", seconds=80)
    rank(task, other_labeler, "b a c d", seconds=2)
    return task


@pytest.mark.parametrize("who, status", [("batch_admin", 200), ("researcher", 200), ("labeler", 403)])
def test_team_numbers_are_for_admins_and_researchers(client, request, ranked, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("api:quality-agreement")).status_code == status
    assert client.get(reverse("api:quality-labelers")).status_code == status
    assert client.get(reverse("api:evaluations")).status_code == status


def test_anonymous_gets_nothing(client, ranked):
    assert client.get(reverse("api:quality-agreement")).status_code in (401, 403)


def test_a_labeler_reads_only_their_own_numbers(client, labeler, other_labeler, ranked):
    client.force_login(labeler)
    own = client.get(reverse("api:quality-labeler", args=[labeler.pk]))
    assert own.status_code == 200
    body = own.json()
    assert body["username"] == "lab1" and body["rankings"] == 1
    assert body["agreement"]["value"] == pytest.approx(5 / 6)
    assert client.get(reverse("api:quality-labeler", args=[other_labeler.pk])).status_code == 403


def test_agreement_payload(client, researcher, ranked):
    client.force_login(researcher)
    body = client.get(reverse("api:quality-agreement"), {"batch": ranked.batch_id}).json()
    assert body["rankings"]["overall"]["value"] == pytest.approx(5 / 6)
    assert str(ranked.batch_id) in body["rankings"]["by_batch"]
    assert {f["flag"] for f in body["flags"]} >= {"hallucination", "fails_instruction", "inappropriate"}
    assert client.get(reverse("api:quality-agreement"), {"batch": "x"}).status_code == 400


def test_labeler_list_flags_fast_submissions(client, batch_admin, labeler, other_labeler, ranked):
    client.force_login(batch_admin)
    rows = {r["username"]: r for r in client.get(reverse("api:quality-labelers")).json()}
    assert rows["lab2"]["fast"] == 0  # two rankings are too few for a batch median
    for _ in range(2):
        task = task_in(ranked.batch)
        rank(task, labeler, "a b c d", seconds=60)
        rank(task, other_labeler, "a b c d", seconds=3)
    rows = {r["username"]: r for r in client.get(reverse("api:quality-labelers")).json()}
    # the batch's six rankings take 80, 2, 60, 3, 60, 3 s: median 31.5, so under 10.5 s is too fast
    assert rows["lab2"]["fast"] == 3 and rows["lab1"]["fast"] == 0
    assert rows["lab1"]["median_seconds"] == 60 and rows["lab2"]["fast_share"] == 1.0
    scoped = client.get(reverse("api:quality-labelers"), {"batch": [ranked.batch_id, 999]}).json()
    assert {r["username"]: r["rankings"] for r in scoped} == {"lab1": 3, "lab2": 3}


def test_evaluation_results_payload(client, researcher):
    prompts = [PromptFactory(split=Split.TEST) for _ in range(2)]
    batch = evaluation_batch_create(
        name="E", external_sources=["m1", "m2"], outputs={p.pk: {"m1": "one", "m2": "two"} for p in prompts}
    )
    l1, l2 = labelers(2)
    for task in batch.tasks.all():
        by = {c.source_name: c.pk for c in task.completions.all()}
        ranking_submit(
            assignment=assignment_for(task, l1),
            tiers=[[by["m2"]], [by["m1"]]],
            ratings=scored([[by["m2"]], [by["m1"]]]),
        )
    client.force_login(researcher)
    url = reverse("api:evaluation", args=[batch.pk])
    body = client.get(url, {"baseline": "m1"}).json()
    assert body["baseline"] == "m1" and body["models"] == ["m1", "m2"]
    m2 = next(r for r in body["overall"] if r["model"] == "m2")
    assert m2["win_rate"]["value"] == 1.0 and m2["wins"] == 2 and m2["model_version"] is None
    bad = client.get(url, {"baseline": "zz"})
    assert bad.status_code == 400 and "not one of the models" in bad.json()["detail"]
