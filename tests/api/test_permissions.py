"""The permission matrix: every role x endpoint x method gets exactly the expected status.

Roles: anonymous, labeler (lab1, on batch "mine"), batch admin, researcher. Objects are checked too:
a labeler gets 404 for another labeler's ranking or demonstration and for a batch they are not on."""

import shutil
import tempfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import TestCase, override_settings
from rest_framework.test import APIClient

from tests.api.world import build_world, completion_ids
from tests.factories import scored

ROLES = (None, "labeler", "admin", "researcher")


def prompts_file(w):
    return {"file": SimpleUploadedFile("p.jsonl", b'{"text": "An imported prompt", "category": "chat"}\n')}


def completions_file(w):
    line = b'{"prompt": "Rank these", "completions": ["one", "two"], "model": "m"}\n'
    return {"file": SimpleUploadedFile("c.jsonl", line), "batch_name": "imported"}


# name: (method, path with {world keys}, body or body(world), statuses for anonymous, labeler, admin, researcher)
MATRIX = {
    "list prompts": ("get", "/api/v1/prompts/", None, (401, 200, 200, 200)),
    "read own prompt": ("get", "/api/v1/prompts/{authored}/", None, (401, 200, 200, 200)),
    "read someone's prompt": ("get", "/api/v1/prompts/{prompt}/", None, (401, 404, 200, 200)),
    "create prompt": (
        "post",
        "/api/v1/prompts/",
        {"text": "A fresh prompt via the API", "category": "chat"},
        (401, 403, 201, 403),
    ),
    "list completions": ("get", "/api/v1/completions/", None, (401, 403, 200, 200)),
    "read completion": ("get", "/api/v1/completions/{completion}/", None, (401, 403, 200, 200)),
    "list demonstrations": ("get", "/api/v1/demonstrations/", None, (401, 200, 200, 200)),
    "read own demonstration": ("get", "/api/v1/demonstrations/{my_demo}/", None, (401, 200, 200, 200)),
    "read other's demonstration": ("get", "/api/v1/demonstrations/{other_demo}/", None, (401, 404, 200, 200)),
    "list batches": ("get", "/api/v1/batches/", None, (401, 200, 200, 200)),
    "read my batch": ("get", "/api/v1/batches/{batch}/", None, (401, 200, 200, 200)),
    "read a batch I am not on": ("get", "/api/v1/batches/{other_batch}/", None, (401, 404, 200, 200)),
    "create batch": (
        "post",
        "/api/v1/batches/",
        {"name": "api", "kind": "prompt_writing", "task_count": 2},
        (401, 403, 201, 403),
    ),
    "pause batch": ("post", "/api/v1/batches/{batch}/pause/", None, (401, 403, 200, 403)),
    "resume batch": ("post", "/api/v1/batches/{batch}/resume/", None, (401, 403, 200, 403)),
    "close batch": ("post", "/api/v1/batches/{batch}/close/", None, (401, 403, 200, 403)),
    "change labelers": (
        "post",
        "/api/v1/batches/{batch}/labelers/",
        {"remove": ["lab2"]},
        (401, 403, 200, 403),
    ),
    "batch progress": ("get", "/api/v1/batches/{batch}/progress/", None, (401, 403, 200, 200)),
    "list tasks": ("get", "/api/v1/tasks/", None, (401, 200, 200, 200)),
    "read task of my batch": ("get", "/api/v1/tasks/{t1}/", None, (401, 200, 200, 200)),
    "read task of another batch": ("get", "/api/v1/tasks/{other_task}/", None, (401, 404, 200, 200)),
    "my next task": ("post", "/api/v1/tasks/next/{batch}/", None, (401, 200, 403, 403)),
    "next task in a batch I am not on": (
        "post",
        "/api/v1/tasks/next/{other_batch}/",
        None,
        (401, 403, 403, 403),
    ),
    "read my assignment": ("get", "/api/v1/assignments/{live}/", None, (401, 200, 403, 403)),
    "submit my assignment": (
        "post",
        "/api/v1/assignments/{live}/submit/",
        lambda w: {"tiers": [completion_ids(w["t2"])], "ratings": scored([completion_ids(w["t2"])])},
        (401, 201, 403, 403),
    ),
    "list rankings": ("get", "/api/v1/rankings/", None, (401, 200, 200, 200)),
    "read own ranking": ("get", "/api/v1/rankings/{my_ranking}/", None, (401, 200, 200, 200)),
    "read other's ranking": ("get", "/api/v1/rankings/{other_ranking}/", None, (401, 404, 200, 200)),
    "list datasets": ("get", "/api/v1/datasets/", None, (401, 403, 200, 200)),
    "read dataset": ("get", "/api/v1/datasets/{snapshot}/", None, (401, 403, 200, 200)),
    "export dataset": ("post", "/api/v1/datasets/", {"kind": "rm_pairs"}, (401, 403, 403, 202)),
    "download dataset": ("get", "/api/v1/datasets/{snapshot}/download/", None, (401, 403, 403, 200)),
    "delete dataset": ("delete", "/api/v1/datasets/{snapshot}/", None, (401, 403, 403, 204)),
    "import prompts": ("post-multipart", "/api/v1/imports/prompts/", prompts_file, (401, 403, 202, 403)),
    "import completions": (
        "post-multipart",
        "/api/v1/imports/completions/",
        completions_file,
        (401, 403, 202, 403),
    ),
    "list jobs": ("get", "/api/v1/jobs/", None, (401, 403, 200, 200)),
    "read import job": ("get", "/api/v1/jobs/{import_job}/", None, (401, 403, 200, 404)),
    "read export job": ("get", "/api/v1/jobs/{export_job}/", None, (401, 403, 404, 200)),
    "list model versions": ("get", "/api/v1/model-versions/", None, (401, 403, 200, 200)),
    "read model version": ("get", "/api/v1/model-versions/{model}/", None, (401, 403, 200, 200)),
    "list training runs": ("get", "/api/v1/training-runs/", None, (401, 403, 200, 200)),
    "read training run": ("get", "/api/v1/training-runs/{run}/", None, (401, 403, 200, 200)),
    "schema": ("get", "/api/v1/schema/", None, (401, 200, 200, 200)),
    "swagger ui": ("get", "/api/v1/docs/", None, (401, 200, 200, 200)),
    "api root": ("get", "/api/v1/", None, (401, 200, 200, 200)),
}


class PermissionMatrix(TestCase):
    """One test per cell; the world is built once and every cell runs in its own rolled-back transaction."""

    @classmethod
    def setUpClass(cls):
        cls.media = tempfile.mkdtemp()
        cls.media_override = override_settings(MEDIA_ROOT=cls.media)
        cls.media_override.enable()
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.media_override.disable()
        shutil.rmtree(cls.media, ignore_errors=True)

    @classmethod
    def setUpTestData(cls):
        cls.world = build_world()

    def check(self, name: str, role: str | None, expected: int) -> None:
        method, template, body, _ = MATRIX[name]
        w = self.world
        path = template.format(**{k: getattr(v, "pk", v) for k, v in w.items() if k != "users"})
        body = body(w) if callable(body) else body
        client = APIClient()
        if role is not None:
            client.force_authenticate(w["users"][role])
        if method == "post-multipart":
            response = client.post(path, body, format="multipart")
        else:
            response = (
                getattr(client, method)(path, body, format="json") if body else getattr(client, method)(path)
            )
        self.assertEqual(response.status_code, expected, getattr(response, "data", response))
        if expected == 401:
            self.assertEqual(response["WWW-Authenticate"], "Token")


def _cell(name: str, role: str | None, expected: int):
    def test(self):
        self.check(name, role, expected)

    return test


for _name, (*_, _statuses) in MATRIX.items():
    for _role, _expected in zip(ROLES, _statuses, strict=True):
        _slug = "".join(ch if ch.isalnum() else "_" for ch in f"{_name} as {_role or 'anonymous'}")
        setattr(PermissionMatrix, f"test_{_slug}", _cell(_name, _role, _expected))


@pytest.mark.django_db
def test_labelers_see_only_their_own_submissions_in_lists(world, client_as):
    client = client_as("labeler")
    assert [r["id"] for r in client.get("/api/v1/rankings/").data["results"]] == [world["my_ranking"].pk]
    assert [d["id"] for d in client.get("/api/v1/demonstrations/").data["results"]] == [world["my_demo"].pk]
    assert [p["id"] for p in client.get("/api/v1/prompts/").data["results"]] == [world["authored"].pk]
    assert [b["id"] for b in client.get("/api/v1/batches/").data["results"]] == [world["batch"].pk]
    assert {t["batch"] for t in client.get("/api/v1/tasks/").data["results"]} == {world["batch"].pk}
    assert "labelers" not in client.get(f"/api/v1/batches/{world['batch'].pk}/").data


def test_a_user_without_a_role_gets_403(db):
    from tests.factories import UserFactory

    client = APIClient()
    client.force_authenticate(UserFactory(username="nobody"))
    assert client.get("/api/v1/prompts/").status_code == 403
