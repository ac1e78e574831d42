"""A round's state is typed (training.round_state.RoundState): read tolerantly from the rows written so
far, and published by the API with declared fields rather than as the stored dict."""

import pytest
from rest_framework.test import APIClient

from training.models import Round, RoundStatus
from training.round_state import RoundState

OLD_ROW = {
    "done": ["export", "sft"],
    "snapshots": {"sft": 3, "rm_rankings": "4", "prompts": 5},
    "runs": {"sft": [7], "rm": [8, 9]},
    "models": {"sft": 11},
    "retry": "rm",
}


def test_a_stored_state_reads_back_typed_and_writes_the_same_shape():
    state = RoundState.from_json(OLD_ROW)
    assert state.done == ["export", "sft"] and state.retry == "rm"
    assert state.snapshots == {"sft": 3, "rm_rankings": 4, "prompts": 5}  # an id stored as text is an int
    assert state.runs["rm"] == [8, 9] and state.models == {"sft": 11}
    assert RoundState.from_json(state.to_json()) == state


def test_a_row_from_before_any_step_reads_as_the_empty_state():
    assert RoundState.from_json({"done": []}) == RoundState.from_json({}) == RoundState.from_json(None)
    assert RoundState().to_json() == {"done": [], "snapshots": {}, "runs": {}, "models": {}, "retry": ""}


@pytest.mark.django_db
def test_the_api_publishes_every_declared_field_of_the_state(researcher):
    fresh = Round.objects.create(number=1, status=RoundStatus.FAILED, state={"done": []})
    old = Round.objects.create(number=2, status=RoundStatus.FAILED, state={**OLD_ROW, "stray": 1})
    client = APIClient()
    client.force_authenticate(researcher)
    empty = client.get(f"/api/v1/rounds/{fresh.pk}/").json()["state"]
    assert empty == {"done": [], "snapshots": {}, "runs": {}, "models": {}, "retry": ""}
    state = client.get(f"/api/v1/rounds/{old.pk}/").json()["state"]
    assert state["snapshots"]["rm_rankings"] == 4 and state["runs"]["rm"] == [8, 9]
    assert "stray" not in state


@pytest.mark.django_db
def test_the_schema_documents_the_round_state(researcher):
    client = APIClient()
    client.force_authenticate(researcher)
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]

    def component(ref: str) -> dict:
        return components[ref.rsplit("/", 1)[1]]

    answer = schema["paths"]["/api/v1/rounds/{id}/"]["get"]["responses"]["200"]["content"]
    round_ = component(answer["application/json"]["schema"]["$ref"])
    state = round_["properties"]["state"]
    declared = component(state.get("$ref") or state["allOf"][0]["$ref"])["properties"]
    assert set(declared) == {"done", "snapshots", "runs", "models", "retry"}
