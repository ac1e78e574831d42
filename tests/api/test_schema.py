"""The served OpenAPI schema is valid OpenAPI, and generating it raises no warning (so client generators
get stable names: no hashed enum names, one token scheme)."""

import pytest
import yaml
from django.core.management import call_command
from openapi_spec_validator import validate


def test_the_served_schema_is_valid_openapi(client_as):
    response = client_as("researcher").get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    validate(response.json())


@pytest.mark.django_db
def test_schema_generation_warns_of_nothing(tmp_path):
    schema = tmp_path / "schema.yaml"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(schema))
    names = set(yaml.safe_load(schema.read_text())["components"]["schemas"])
    assert {"BatchStatusEnum", "RunStatusEnum", "JobKindEnum", "RoundMethodEnum"} <= names


def test_the_schema_has_one_root_holding_labeling_quality_and_training(client_as):
    schema = client_as("researcher").get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    paths = set(schema.json()["paths"])
    assert {p for p in paths if not p.startswith("/api/v1/")} == set()
    assert {
        "/api/v1/quality/agreement/",
        "/api/v1/training-runs/{id}/cancel/",
        "/api/v1/rounds/",
        "/api/v1/rounds/{id}/",
    } <= paths


@pytest.mark.parametrize("old", ["/api/prompts/", "/quality/api/agreement/", "/training/api/runs/1/"])
def test_the_old_api_roots_are_gone(client_as, old):
    assert client_as("researcher").get(old).status_code == 404
