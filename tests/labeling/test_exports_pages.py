"""The datasets page (an export is a job, its page shows the snapshot) and the export_dataset command."""

import hashlib
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from labeling.models import DatasetSnapshot, Job
from labeling.services.exports import snapshot_create
from labeling.services.rankings import ranking_submit
from tests.factories import assignment_for, ranking_task, scored

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = True  # jobs run at once, in the request's thread (as a worker would run them)


@pytest.fixture
def ranked(labeler):
    task = ranking_task(k=3)
    ids = list(task.task_completions.values_list("completion_id", flat=True))
    ranking_submit(
        assignment=assignment_for(task, labeler), tiers=[[i] for i in ids], ratings=scored([[i] for i in ids])
    )
    return task


@pytest.mark.parametrize(
    "who, page, download", [("labeler", 403, 403), ("batch_admin", 200, 403), ("researcher", 200, 200)]
)
def test_who_sees_and_downloads(client, request, ranked, who, page, download):
    snapshot = snapshot_create(kind="rm_pairs", filters={})
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("manage:datasets")).status_code == page
    assert client.get(reverse("manage:dataset_download", args=[snapshot.pk])).status_code == download


def test_a_researcher_exports_and_downloads(client, researcher, ranked):
    client.force_login(researcher)
    response = client.post(
        reverse("manage:datasets"),
        {"kind": "rm_rankings", "rankings": "consensus", "split": [ranked.prompt.split]},
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("manage:job", args=[job.pk])
    snapshot = DatasetSnapshot.objects.get()
    assert job.status == "succeeded" and job.snapshot == snapshot and job.created_by == researcher
    job_page = client.get(response["Location"]).content.decode()
    assert (
        "1 rows exported" in job_page and reverse("manage:dataset_download", args=[snapshot.pk]) in job_page
    )
    assert (
        snapshot.filters == {"split": [ranked.prompt.split], "rankings": "consensus"}
        and snapshot.row_count == 1
    )
    body = b"".join(client.get(reverse("manage:dataset_download", args=[snapshot.pk])).streaming_content)
    assert hashlib.sha256(body).hexdigest() == snapshot.sha256
    page = client.get(reverse("manage:datasets")).content.decode()
    assert reverse("manage:dataset_download", args=[snapshot.pk]) in page
    assert f'<span class="tag">split: {ranked.prompt.split}</span>' in page  # the filters it was made with
    assert '<span class="tag">rankings: consensus</span>' in page


def test_a_researcher_exports_a_conversational_snapshot_from_the_page(client, researcher, ranked):
    client.force_login(researcher)
    response = client.post(
        reverse("manage:datasets"), {"kind": "rm_pairs", "format": "conversational", "rankings": "all"}
    )
    assert response.status_code == 302
    snapshot = DatasetSnapshot.objects.get()
    assert snapshot.format == "conversational" and snapshot.row_count == 3
    download = client.get(reverse("manage:dataset_download", args=[snapshot.pk]))
    assert f"rm_pairs-conversational-{snapshot.pk}.jsonl" in download["Content-Disposition"]
    row = json.loads(b"".join(download.streaming_content).splitlines()[0])
    assert row["chosen"][0]["role"] == "assistant" and row["prompt"][0]["role"] == "user"
    page = client.get(reverse("manage:datasets")).content.decode()
    assert "<td>conversational</td>" in page and 'name="format"' in page


def test_the_page_refuses_an_unknown_format_on_its_field(client, researcher, ranked):
    client.force_login(researcher)
    response = client.post(reverse("manage:datasets"), {"kind": "sft", "format": "chatml", "rankings": "all"})
    assert response.status_code == 400 and "format" in response.context["form"].errors
    assert DatasetSnapshot.objects.count() == 0


def test_a_batch_admin_cannot_export(client, batch_admin, ranked):
    client.force_login(batch_admin)
    client.post(reverse("manage:datasets"), {"kind": "rm_pairs", "rankings": "all"})
    assert DatasetSnapshot.objects.count() == 0


def test_export_dataset_command_writes_the_file_and_records_it(ranked, labeler, tmp_path, capsys):
    out = tmp_path / "pairs.jsonl"
    call_command("export_dataset", "--kind", "rm_pairs", "--labeler", labeler.username, "--out", str(out))
    snapshot = DatasetSnapshot.objects.get()
    assert snapshot.filters == {"labelers": [labeler.pk], "rankings": "all"}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and f"snapshot {snapshot.pk}: 3 rows" in capsys.readouterr().out


def test_export_dataset_command_writes_a_conversational_snapshot(ranked, tmp_path, capsys):
    out = tmp_path / "rankings.jsonl"
    call_command("export_dataset", "--kind", "rm_rankings", "--format", "conversational", "--out", str(out))
    snapshot = DatasetSnapshot.objects.get()
    assert snapshot.format == "conversational" and "conversational" in capsys.readouterr().out
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["prompt"] == [{"content": ranked.prompt.text, "role": "user"}]
    assert [c[0]["role"] for c in row["completions"]] == ["assistant"] * 3 and row["ranks"] == [0, 1, 2]


@pytest.mark.parametrize("who, status", [("labeler", 403), ("batch_admin", 404), ("researcher", 200)])
def test_an_export_jobs_page_is_for_researchers(client, request, researcher, who, status):
    job = Job.objects.create(kind="export", created_by=researcher, params={"kind": "sft"})
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("manage:job", args=[job.pk])).status_code == status


def test_an_export_that_fails_shows_why_on_its_page(client, researcher, ranked, settings, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where MEDIA_ROOT's folder should be\n")
    settings.MEDIA_ROOT = blocker / "media"
    client.force_login(researcher)
    response = client.post(reverse("manage:datasets"), {"kind": "rm_pairs", "rankings": "all"})
    page = client.get(response["Location"]).content.decode()
    assert "The job failed" in page and "Could not write the export to MEDIA_ROOT/datasets/" in page
    assert Job.objects.get().error_code == "storage_unavailable" and DatasetSnapshot.objects.count() == 0
