"""Dataset snapshots and imports over the API: both start a job (202) whose url tells its outcome."""

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import Job, Prompt
from training.models import ModelVersionSnapshot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inline_jobs(settings):
    """Jobs run at once, in the request's thread (as a worker would run them)."""
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = True


def finished(client, accepted) -> dict:
    """The job a 202 answer started, read back from its url."""
    assert accepted.status_code == 202 and accepted["Location"] == accepted.data["url"]
    job = client.get(accepted.data["url"])
    assert job.status_code == 200
    return job.data


def test_export_then_download_the_same_bytes(world, client_as):
    client = client_as("researcher")
    job = finished(
        client,
        client.post(
            "/api/v1/datasets/",
            {"kind": "rm_rankings", "filters": {"batches": [world["batch"].pk], "rankings": "consensus"}},
            format="json",
        ),
    )
    assert job["status"] == "succeeded" and job["kind"] == "export" and job["progress_done"] == 1
    created = client.get(job["snapshot_url"])
    assert created.data["row_count"] == 1 and job["download_url"] == created.data["download_url"]
    assert created.data["contents"] == {"batches": {str(world["batch"].pk): 1}, "outside_batches": 0}
    download = client.get(created.data["download_url"])
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == created.data["sha256"] == download["X-Checksum-SHA256"]
    assert json.loads(body)["task_id"] == world["t1"].pk
    listed = client.get("/api/v1/datasets/", {"kind": "rm_rankings"}).data["results"]
    assert [s["id"] for s in listed] == [created.data["id"]]


def test_a_download_whose_file_is_gone_is_a_404_naming_the_snapshot(world, client_as, media):
    snapshot = world["snapshot"]
    (media / snapshot.file).unlink()
    response = client_as("researcher").get(f"/api/v1/datasets/{snapshot.pk}/download/")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["code"] == "file_missing"
    assert f"snapshot {snapshot.pk}'s file is missing" in response.json()["detail"]


def test_a_download_while_the_storage_is_gone_is_a_503(world, client_as, settings, media):
    settings.MEDIA_ROOT = str(media / "unmounted")
    response = client_as("researcher").get(f"/api/v1/datasets/{world['snapshot'].pk}/download/")
    assert response.status_code == 503 and response.json()["code"] == "storage_unavailable"
    assert "MEDIA_ROOT" in response.json()["detail"]


def test_export_a_conversational_snapshot_and_see_its_format(world, client_as):
    client = client_as("researcher")
    job = finished(
        client, client.post("/api/v1/datasets/", {"kind": "sft", "format": "conversational"}, format="json")
    )
    created = client.get(job["snapshot_url"])
    assert created.data["format"] == "conversational"
    download = client.get(created.data["download_url"])
    assert "sft-conversational-" in download["Content-Disposition"]
    rows = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    assert rows and all(r["prompt"][0]["role"] == "user" for r in rows)
    assert all(
        r["completion"] == [{"content": r["completion"][0]["content"], "role": "assistant"}] for r in rows
    )
    detail = client.get(f"/api/v1/datasets/{created.data['id']}/").data
    listed = {s["id"]: s["format"] for s in client.get("/api/v1/datasets/").data["results"]}
    assert detail["format"] == "conversational" and listed[world["snapshot"].pk] == "standard"


def test_an_unknown_format_is_a_400_naming_the_field(world, client_as):
    bad = client_as("researcher").post(
        "/api/v1/datasets/", {"kind": "sft", "format": "chatml"}, format="json"
    )
    assert bad.status_code == 400 and bad.data["field"] == "format"
    assert Job.objects.count() == 2  # the world's two: no export started
    assert client_as("researcher").get("/api/v1/datasets/").data["results"][0]["id"] == world["snapshot"].pk


def test_bad_filters_and_protected_deletes_are_400s(world, client_as):
    client = client_as("researcher")
    bad = client.post("/api/v1/datasets/", {"kind": "sft", "filters": {"split": "everything"}}, format="json")
    assert bad.status_code == 400 and bad.data["field"] == "split"
    assert Job.objects.count() == 2  # the world's two: no export started
    ModelVersionSnapshot.objects.create(model_version=world["model"], snapshot=world["snapshot"])
    refused = client.delete(f"/api/v1/datasets/{world['snapshot'].pk}/")
    assert (
        refused.status_code == 400
        and refused.data["code"] == "protected"
        and "base" in refused.data["detail"]
    )


def test_import_prompts_over_the_api(world, client_as):
    data = b"text,category\nHow do I bake bread?,open_qa\nWrite a limerick,generation\n"
    client = client_as("admin")
    response = client.post(
        "/api/v1/imports/prompts/",
        {"file": SimpleUploadedFile("prompts.csv", data), "batch_name": "demos", "labelers": ["lab1"]},
        format="multipart",
    )
    job = finished(client, response)
    assert (job["status"], job["kind"], job["upload_name"]) == ("succeeded", "prompt_import", "prompts.csv")
    assert (
        job["result"]["created"] == 2 and job["batch"] and job["progress_done"] == job["progress_total"] == 2
    )
    batch = client.get(job["batch_url"]).data
    assert batch["kind"] == "demonstration" and batch["labelers"] == ["lab1"]


def test_a_bad_file_fails_its_job_listing_lines_and_fields(world, client_as):
    data = b'{"text": "fine", "category": "chat"}\n{"text": "no category"}\n'
    client = client_as("admin")
    job = finished(
        client,
        client.post(
            "/api/v1/imports/prompts/", {"file": SimpleUploadedFile("p.jsonl", data)}, format="multipart"
        ),
    )
    assert job["status"] == "failed" and job["error_code"] == "bad_file" and job["error_count"] == 1
    assert job["errors"] == [{"line": 2, "field": "category", "message": "is required and must not be empty"}]
    assert job["message"].startswith("the file was rejected, nothing was imported: line 2: category:")
    assert not Prompt.objects.filter(text="fine").exists()


def test_a_file_over_the_size_limit_is_a_413_and_starts_nothing(world, client_as, settings):
    settings.IMPORT_MAX_FILE_BYTES = 100
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # spooled as big files are: cut at the limit as it arrives
    data = b'{"text": "fine", "category": "chat"}\n' * 5
    response = client_as("admin").post(
        "/api/v1/imports/prompts/", {"file": SimpleUploadedFile("p.jsonl", data)}, format="multipart"
    )
    assert response.status_code == 413 and response.data["code"] == "file_too_large"
    assert response.data["field"] == "file" and "IMPORT_MAX_FILE_BYTES" in response.data["detail"]
    assert Job.objects.count() == 2 and not Prompt.objects.filter(text="fine").exists()  # the world's jobs


def test_jobs_are_seen_by_the_role_that_runs_them(world, client_as):
    admin, researcher = client_as("admin"), client_as("researcher")
    imported = admin.post(
        "/api/v1/imports/prompts/",
        {"file": SimpleUploadedFile("p.csv", b"text,category\nHi,chat\n")},
        format="multipart",
    ).data
    exported = researcher.post("/api/v1/datasets/", {"kind": "prompts"}, format="json").data
    assert (
        admin.get(exported["url"]).status_code == 404 and researcher.get(imported["url"]).status_code == 404
    )
    assert client_as("labeler").get(imported["url"]).status_code == 403
    assert client_as(None).get(imported["url"]).status_code == 401
    assert [j["id"] for j in admin.get("/api/v1/jobs/").data["results"]] == [
        imported["id"],
        world["import_job"].pk,
    ]
    assert [j["id"] for j in researcher.get("/api/v1/jobs/").data["results"]] == [
        exported["id"],
        world["export_job"].pk,
    ]


def test_import_completions_makes_a_batch(world, client_as):
    lines = b'{"prompt": "Name a colour", "completions": ["red", "blue", "green"], "model": "gpt-x"}\n'
    client = client_as("admin")
    response = client.post(
        "/api/v1/imports/completions/",
        {
            "file": SimpleUploadedFile("c.jsonl", lines),
            "batch_name": "colours",
            "kind": "evaluation",
            "overlap": 2,
        },
        format="multipart",
    )
    job = finished(client, response)
    assert job["status"] == "succeeded" and job["result"]["tasks_created"] == 1
    batch = client.get(job["batch_url"]).data
    assert (batch["kind"], batch["overlap"], batch["name"]) == ("evaluation", 2, "colours")
