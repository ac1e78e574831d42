"""Running a batch over the API."""

import pytest

from labeling.models import Batch
from tests.factories import CompletionFactory, PromptFactory

pytestmark = pytest.mark.django_db


def test_create_a_ranking_batch_from_a_sources_completions(world, client_as):
    prompt = PromptFactory(category="extract")
    for _ in range(3):
        CompletionFactory(prompt=prompt, source_name="vllm")
    response = client_as("admin").post(
        "/api/v1/batches/",
        {
            "name": "extract round",
            "kind": "ranking",
            "overlap": 3,
            "labelers": ["lab1"],
            "groups": [],
            "prompt_filters": {"category": ["extract"]},
            "completion_filters": {"source_name": "vllm"},
            "instructions": "Rank them.",
            "deadline": "2999-01-01T00:00:00Z",
        },
        format="json",
    )
    assert response.status_code == 201, response.data
    batch = Batch.objects.get(pk=response.data["id"])
    assert batch.tasks.get().k == 3 and batch.created_by == world["users"]["admin"]
    assert response.data["labelers"] == ["lab1"] and response.data["task_count"] == 1


def test_pause_close_and_progress(world, client_as):
    client, pk = client_as("admin"), world["batch"].pk
    assert client.post(f"/api/v1/batches/{pk}/pause/").data["status"] == "paused"
    assert client.post(f"/api/v1/batches/{pk}/resume/").data["status"] == "active"
    assert client.post(f"/api/v1/batches/{pk}/close/").data["status"] == "closed"
    refused = client.post(f"/api/v1/batches/{pk}/resume/")
    assert refused.status_code == 400 and refused.data["code"] == "bad_state"
    progress = client.get(f"/api/v1/batches/{pk}/progress/").data
    assert (progress["tasks"], progress["tasks_done"], progress["labels_submitted"]) == (2, 1, 2)
    assert progress["labels_in_flight"] == 1
    by_name = {row["username"]: row for row in progress["labelers"]}
    assert by_name["lab1"]["submitted"] == 1 and by_name["lab1"]["median_seconds"] == 9


def test_add_and_remove_labelers(world, client_as):
    client, pk = client_as("admin"), world["other_batch"].pk
    response = client.post(
        f"/api/v1/batches/{pk}/labelers/", {"add": ["lab1"], "remove": ["lab2"]}, format="json"
    )
    assert response.data["labelers"] == ["lab1"]
    refused = client.post(f"/api/v1/batches/{pk}/labelers/", {"add": ["sci"]}, format="json")
    assert refused.status_code == 400 and refused.data["field"] == "labelers"
    unknown = client.post(f"/api/v1/batches/{pk}/labelers/", {"add": ["ghost"]}, format="json")
    assert unknown.status_code == 400 and unknown.data["field"] == "add"
