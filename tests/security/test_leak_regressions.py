"""The leaks and holes the URL walker found, one test each (labeler A against labeler B's side)."""

import pytest
from django.test import Client

from labeling.models import DatasetSnapshot

pytestmark = pytest.mark.django_db


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_labeler_opens_only_the_prompts_that_are_theirs_to_see(world):
    a, b = world.a, world.b
    client = as_user(a.user)
    for prompt in b.objects["prompt"]:  # B's written prompt, B's batch's prompt, B's demonstration prompt
        assert client.get(f"/prompts/{prompt.pk}/").status_code == 404
    written, handed_out, demonstrated = a.objects["prompt"]
    for prompt in (written, handed_out, demonstrated):
        assert client.get(f"/prompts/{prompt.pk}/").status_code == 200
    assert client.post(f"/prompts/{written.pk}/").status_code == 405
    assert as_user(world.users["researcher"]).get(f"/prompts/{b.objects['prompt'][0].pk}/").status_code == 200


def test_the_browsable_api_filter_forms_list_no_one_elses_batches_or_prompts(world):
    client = as_user(world.a.user)
    for url in ("/api/v1/tasks/", "/api/v1/demonstrations/", "/api/v1/rankings/"):
        html = client.get(url, {"format": "api"}).content.decode()
        for what in ("batch-name", "demo-batch", "prompt", "written-prompt", "demo-prompt"):
            assert world.b.marker(what) not in html, (url, what)
    b_batch = world.b.objects["batch"][0]
    assert client.get("/api/v1/tasks/", {"batch": b_batch.pk}).json()["results"] == []


def test_a_labelers_quality_page_cannot_be_narrowed_to_a_batch_they_are_not_on(world):
    client = as_user(world.a.user)
    assert client.get("/quality/", {"batch": world.b.objects["batch"][0].pk}).status_code == 404
    page = client.get("/quality/", {"batch": world.a.objects["batch"][0].pk})
    assert page.status_code == 200 and world.a.marker("batch-name") in page.content.decode()


def test_refusing_work_on_a_batch_does_not_name_the_batch(world):
    response = as_user(world.a.user).post(f"/api/v1/tasks/next/{world.b.objects['batch'][0].pk}/")
    assert response.status_code == 403
    assert world.b.marker("batch-name") not in response.content.decode()


def test_the_api_has_no_format_suffix_routes(world):
    client = as_user(world.users["batch_admin"])
    batch = world.b.objects["batch"][0]
    assert client.get(f"/api/v1/batches/{batch.pk}/progress.json").status_code == 404  # was a 500
    assert client.get(f"/api/v1/batches/{batch.pk}/progress/", {"format": "json"}).status_code == 200


def test_a_batch_admin_cannot_export_from_the_datasets_page(world):
    before = DatasetSnapshot.objects.count()
    response = as_user(world.users["batch_admin"]).post(
        "/manage/datasets/", {"kind": "rm_pairs", "rankings": "all"}
    )
    assert response.status_code == 403 and DatasetSnapshot.objects.count() == before
