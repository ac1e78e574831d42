"""My next task and submit over the API, for each kind of batch."""

import pytest

from labeling.models import Assignment, Demonstration, Prompt, Ranking
from labeling.services.batches import batch_create_from_prompts
from tests.api.world import completion_ids
from tests.factories import PromptFactory

pytestmark = pytest.mark.django_db


def test_next_gives_my_live_assignment_with_completions_in_my_order(world, client_as):
    response = client_as("labeler").post(f"/api/v1/tasks/next/{world['batch'].pk}/")
    assert response.status_code == 200 and response.data["id"] == world["live"].pk
    assert sorted(c["id"] for c in response.data["completions"]) == sorted(completion_ids(world["t2"]))
    assert response.data["kind"] == "ranking" and response.data["prompt"]["text"] == world["t2"].prompt.text


def test_submit_a_ranking_then_nothing_is_left(world, client_as):
    client = client_as("labeler")
    a, b, c, d = completion_ids(world["t2"])
    response = client.post(
        f"/api/v1/assignments/{world['live'].pk}/submit/",
        {
            "tiers": [[a], [b, c], [d]],
            "ratings": {str(a): {"likert": 7}, b: {"likert": 4}, c: {"likert": 4}, d: {"likert": 1}},
            "seconds_spent": 20,
        },
        format="json",
    )
    assert response.status_code == 201
    ranking = Ranking.objects.get(pk=response.data["ranking"])
    assert ranking.tiers == [[a], [b, c], [d]] and ranking.comparisons.count() == 5
    again = client.post(
        f"/api/v1/assignments/{world['live'].pk}/submit/", {"tiers": [[a, b, c, d]]}, format="json"
    )
    assert again.status_code == 201 and again.data["ranking"] == ranking.pk  # idempotent
    assert client.post(f"/api/v1/tasks/next/{world['batch'].pk}/").status_code == 204


def test_a_bad_ranking_is_a_400_naming_the_field(world, client_as):
    a, b, c, d = completion_ids(world["t2"])
    response = client_as("labeler").post(
        f"/api/v1/assignments/{world['live'].pk}/submit/", {"tiers": [[a], [b]]}, format="json"
    )
    assert (
        response.status_code == 400
        and response.data["field"] == "tiers"
        and "missing" in response.data["detail"]
    )
    missing = client_as("labeler").post(f"/api/v1/assignments/{world['live'].pk}/submit/", {}, format="json")
    assert missing.status_code == 400 and missing.data["field"] == "tiers"
    assert Assignment.objects.get(pk=world["live"].pk).status == "active"


def test_a_ranking_needs_a_likert_score_for_every_output_as_on_the_page(world, client_as):
    """The API applies the page's rule (labeling.ranking_rules): a 400 naming 'likert' and the outputs
    left unscored, unless the ranking marks all outputs unusable."""
    a, b, c, d = completion_ids(world["t2"])
    client = client_as("labeler")
    url = f"/api/v1/assignments/{world['live'].pk}/submit/"
    partly = client.post(url, {"tiers": [[a, b, c, d]], "ratings": {a: {"likert": 5}}}, format="json")
    assert partly.status_code == 400 and partly.data["field"] == "likert"
    assert f"{b}, {c}, {d}" in partly.data["detail"]
    assert Assignment.objects.get(pk=world["live"].pk).status == "active"
    unusable = client.post(url, {"tiers": [[a, b, c, d]], "all_unusable": True}, format="json")
    assert unusable.status_code == 201 and Ranking.objects.get(pk=unusable.data["ranking"]).all_unusable


def test_someone_elses_assignment_is_not_found(world, client_as):
    other = Assignment.objects.get(labeler=world["users"]["other_labeler"], task=world["t1"])
    assert (
        client_as("labeler")
        .post(f"/api/v1/assignments/{other.pk}/submit/", {"tiers": []}, format="json")
        .status_code
        == 404
    )


def test_demonstration_and_prompt_writing_submits(world, client_as):
    labeler = world["users"]["labeler"]
    demo_batch = batch_create_from_prompts(
        name="d", kind="demonstration", labelers=[labeler], prompt_filters={"limit": 1}
    )
    writing = batch_create_from_prompts(name="w", kind="prompt_writing", labelers=[labeler], task_count=1)
    client = client_as("labeler")
    task = client.post(f"/api/v1/tasks/next/{demo_batch.pk}/").data
    done = client.post(
        f"/api/v1/assignments/{task['id']}/submit/",
        {"text": "A fine answer.", "seconds_spent": 4},
        format="json",
    )
    assert (
        done.status_code == 201
        and Demonstration.objects.get(pk=done.data["demonstration"]).text == "A fine answer."
    )
    task = client.post(f"/api/v1/tasks/next/{writing.pk}/").data
    existing = PromptFactory(text="Already here: a duplicate prompt")
    dup = client.post(
        f"/api/v1/assignments/{task['id']}/submit/",
        {"text": "Already here: a duplicate prompt", "category": "chat"},
        format="json",
    )
    assert dup.status_code == 400 and dup.data["code"] == "duplicate" and dup.data["field"] == "text"
    assert "similar prompt already exists" in dup.data["detail"]
    assert str(existing.pk) not in dup.data["detail"] and existing.text not in dup.content.decode()
    made = client.post(
        f"/api/v1/assignments/{task['id']}/submit/",
        {"text": "Brand new prompt", "category": "chat"},
        format="json",
    )
    assert made.status_code == 201 and Prompt.objects.get(pk=made.data["prompt"]).author == labeler


@pytest.mark.parametrize("kind", ["ranking", "prompt_writing"])
def test_next_answers_what_a_read_of_the_assignment_shows(world, client_as, kind):
    """`next` builds its answer by hand (it answers every hand-out); a read goes through the serializer.
    Both say the same, for a new hand-out and for the live one asked again."""
    if kind == "ranking":
        client, batch = client_as("other_labeler"), world["batch"]
    else:
        client = client_as("labeler")
        batch = batch_create_from_prompts(
            name="w", kind=kind, labelers=[world["users"]["labeler"]], task_count=1, instructions="Write."
        )
    handed = client.post(f"/api/v1/tasks/next/{batch.pk}/")
    again = client.post(f"/api/v1/tasks/next/{batch.pk}/")
    read = client.get(f"/api/v1/assignments/{handed.data['id']}/")
    assert handed.status_code == 200 and handed.json() == again.json() == read.json()
    assert (handed.json()["prompt"] is None) == (kind == "prompt_writing")


def test_next_in_a_batch_that_does_not_exist_is_not_found(world, client_as):
    client = client_as("labeler")
    for batch_id in (world["other_batch"].pk + 1000, 2**63):
        response = client.post(f"/api/v1/tasks/next/{batch_id}/")
        assert response.status_code == 404 and response.data["detail"] == "No Batch matches the given query."


def test_submitting_an_id_no_assignment_can_have_is_not_found(world, client_as):
    client = client_as("labeler")
    for pk in (2**63, "first"):
        response = client.post(f"/api/v1/assignments/{pk}/submit/", {"tiers": [[1]]}, format="json")
        assert response.status_code == 404 and response.data["code"] == "not_found"


def test_a_comment_past_its_cap_is_a_400_and_a_body_past_the_limit_a_json_413(world, client_as, settings):
    """The 2.4 MB comment that was stored is refused naming its field; a body past what the server reads
    (DATA_UPLOAD_MAX_MEMORY_SIZE) answers the API's JSON error, not Django's HTML 400 page."""
    client = client_as("labeler")
    url = f"/api/v1/assignments/{world['live'].pk}/submit/"
    tiers = [completion_ids(world["t2"])]
    long = client.post(url, {"tiers": tiers, "comment": "x" * 2_400_000}, format="json")
    assert long.status_code == 400 and long.data["field"] == "comment" and long.data["code"] == "invalid"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    huge = client.post(url, {"tiers": tiers, "comment": "x" * 100_000}, format="json")
    assert huge.status_code == 413 and huge["Content-Type"] == "application/json"
    assert huge.json() == {
        "detail": "the request body is larger than the 100,000 bytes the server accepts.",
        "field": "",
        "code": "too_large",
    }
    assert not Ranking.objects.filter(assignment=world["live"]).exists()
