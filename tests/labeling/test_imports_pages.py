"""The imports page: batch admins only; an upload becomes a job whose page shows the outcome, and a bad
file every error with its line and field. A file over the size limit is refused before anything reads it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.test import RequestFactory
from django.urls import reverse

from labeling.models import Batch, Job, Prompt
from labeling.uploads import OversizedUpload

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inline_jobs(settings, tmp_path):
    """Jobs run at once, in the request's thread (as a worker would run them)."""
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = True
    settings.MEDIA_ROOT = tmp_path / "media"


def uploads(settings) -> list:
    folder = settings.MEDIA_ROOT / "uploads"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("who, status", [("labeler", 403), ("researcher", 403), ("batch_admin", 200)])
def test_only_batch_admins_import(client, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("manage:imports")).status_code == status


def test_import_prompts_and_make_a_demonstration_batch(client, batch_admin, labeler, settings):
    client.force_login(batch_admin)
    data = b"text,category,origin_user\nWhat is a fjord?,open_qa,u1\nWrite a riddle,generation,u2\n"
    response = client.post(
        reverse("manage:imports"),
        {
            "which": "prompts",
            "prompts-file": SimpleUploadedFile("new.csv", data),
            "prompts-pii": "flag",
            "prompts-batch_name": "fjords",
            "prompts-overlap": 1,
            "prompts-labelers": [labeler.pk],
        },
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("manage:job", args=[job.pk])
    batch = Batch.objects.get(name="fjords")
    assert Prompt.objects.count() == 2 and batch.tasks.count() == 2
    page = client.get(response["Location"]).content.decode()
    assert "succeeded" in page and "2 prompts created" in page and "new.csv" in page
    assert reverse("manage:batch", args=[batch.pk]) in page
    assert job.upload and uploads(settings) == []  # the uploaded copy goes once the job is done
    assert (
        f'href="{reverse("manage:job", args=[job.pk])}"'
        in client.get(reverse("manage:imports")).content.decode()
    )


def test_a_bad_file_lists_its_errors_on_the_jobs_page_and_imports_nothing(client, batch_admin):
    client.force_login(batch_admin)
    data = b'{"text": "ok", "category": "chat"}\n{"text": "<i>x</i>", "category": "nope"}\n'
    response = client.post(
        reverse("manage:imports"),
        {
            "which": "prompts",
            "prompts-file": SimpleUploadedFile("bad.jsonl", data),
            "prompts-pii": "flag",
            "prompts-overlap": 1,
        },
    )
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "failed" in html and "nothing was imported" in html
    assert "<td>2</td><td>category</td>" in html and "unknown category &#x27;nope&#x27;" in html
    assert Prompt.objects.count() == 0 and Job.objects.get().status == "failed"


def test_import_completions_into_a_ranking_batch(client, batch_admin):
    client.force_login(batch_admin)
    data = b'{"prompt": "Pick a fruit", "completions": ["apple", "pear"], "model": "m1"}\n'
    response = client.post(
        reverse("manage:imports"),
        {
            "which": "completions",
            "completions-file": SimpleUploadedFile("c.jsonl", data),
            "completions-batch_name": "fruit",
            "completions-kind": "ranking",
            "completions-overlap": 3,
            "completions-pii": "flag",
        },
    )
    batch = Batch.objects.get(name="fruit")
    assert response.status_code == 302 and batch.overlap == 3 and batch.tasks.get().k == 2
    assert Job.objects.get().batch == batch


def test_a_file_over_the_size_limit_is_refused_before_anything_reads_it(client, batch_admin, settings):
    settings.IMPORT_MAX_FILE_BYTES = 1000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # spooled as big files are: cut at the limit as it arrives
    client.force_login(batch_admin)
    data = b'{"text": "a prompt", "category": "chat"}\n' * 100  # 4,100 bytes
    response = client.post(
        reverse("manage:imports"),
        {
            "which": "prompts",
            "prompts-file": SimpleUploadedFile("big.jsonl", data),
            "prompts-pii": "flag",
            "prompts-overlap": 1,
        },
    )
    assert response.status_code == 413
    assert "the file is 4.0 KB, over the limit of 1000 bytes per file (IMPORT_MAX_FILE_BYTES)" in (
        response.content.decode()
    )
    assert Job.objects.count() == 0 and Prompt.objects.count() == 0 and uploads(settings) == []


def test_an_upload_past_the_limit_stops_being_stored_as_it_arrives(settings, tmp_path):
    """The spool file is deleted once the limit is passed; the fields after the file still arrive."""
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # so it is spooled to disk, as big files are
    settings.FILE_UPLOAD_TEMP_DIR = spool = tmp_path / "spool"
    spool.mkdir()
    settings.IMPORT_MAX_FILE_BYTES = 1000
    body = {"file": SimpleUploadedFile("big.jsonl", b"x" * 50_000), "which": "prompts"}
    request = RequestFactory().post("/manage/imports/", body)
    upload = request.FILES["file"]
    assert isinstance(upload, OversizedUpload) and upload.size == 50_000 and upload.read() == b""
    assert request.POST["which"] == "prompts" and list(spool.iterdir()) == []

    request = RequestFactory().post("/manage/imports/", {"file": SimpleUploadedFile("ok.jsonl", b"y" * 900)})
    kept = request.FILES["file"]
    assert isinstance(kept, TemporaryUploadedFile) and kept.read() == b"y" * 900


@pytest.mark.parametrize("who, status", [("labeler", 403), ("researcher", 404), ("batch_admin", 200)])
def test_an_import_jobs_page_is_for_batch_admins(client, request, batch_admin, who, status):
    job = Job.objects.create(kind="prompt_import", created_by=batch_admin, upload_name="p.jsonl")
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("manage:job", args=[job.pk])).status_code == status


def test_a_running_jobs_page_refreshes_itself_with_a_static_script(client, batch_admin):
    job = Job.objects.create(
        kind="prompt_import",
        status="running",
        progress_done=300,
        progress_total=1200,
        message="checked 7 lines",
        upload_name="<b>p</b>.jsonl",
    )
    client.force_login(batch_admin)
    page = client.get(reverse("manage:job", args=[job.pk])).content.decode()
    assert '<progress id="job-bar" max="1200" value="300">' in page and "checked 7 lines" in page
    assert 'src="/static/js/manage_job.js"' in page and f'data-status-url="/api/v1/jobs/{job.pk}/"' in page
    assert '<noscript><meta http-equiv="refresh" content="3"></noscript>' in page  # without scripts too
    assert "&lt;b&gt;p&lt;/b&gt;.jsonl" in page and "<b>p</b>" not in page
