"""An export when the disk fails: MEDIA_ROOT is not a writable folder, or the disk fills mid-write.

Real OS failures, nothing faked: a MEDIA_ROOT under a regular file (NotADirectoryError, which even root
gets), and a file size limit (RLIMIT_FSIZE, SIGXFSZ ignored) so write() fails with EFBIG after part of the
file is on disk, as on a full disk. Each time: no snapshot is recorded, no partial file is left, and the
researcher reads why, on the export job's page, over the API, and on a round that was exporting.
"""

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import ServiceError
from labeling.models import DatasetSnapshot, Demonstration, Prompt
from labeling.services import exports
from labeling.services.export_filters import filters_clean
from labeling.services.exports import dataset_lines, snapshot_create, snapshot_path
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, PromptFactory, assignment_for, ranking_task, scored
from training.models import Round, RoundStatus
from training.services.rounds import DEFAULTS, round_advance

pytestmark = pytest.mark.django_db

LONG_TEXT = "All work and no play makes a long prompt. " * 1000  # about 43 KB


@pytest.fixture
def media(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def add_long_prompts(count: int) -> None:
    Prompt.objects.bulk_create(PromptFactory.build(text=f"Prompt {n}. {LONG_TEXT}") for n in range(count))


@pytest.fixture
def long_prompts(db) -> None:
    """Sixty prompts of about 43 KB: a 2.6 MB `prompts` export, more than one block of the COPY writer."""
    add_long_prompts(60)


@pytest.fixture
def long_rankings(labeler) -> None:
    """Ranked tasks with long prompts: the consensus export goes through the Python writer."""
    batch = BatchFactory()
    for number in range(12):
        task = ranking_task(batch, k=3, prompt=PromptFactory(text=f"Ranked prompt {number}. {LONG_TEXT}"))
        ids = list(task.task_completions.values_list("completion_id", flat=True))
        ranking_submit(
            assignment=assignment_for(task, labeler),
            tiers=[[i] for i in ids],
            ratings=scored([[i] for i in ids]),
        )


EXPORTS = {
    "copy-writer": ("prompts", {}, "long_prompts"),
    "python-writer": ("rm_rankings", {"rankings": "consensus"}, "long_rankings"),
}


def export_size(kind: str, filters: dict) -> int:
    return sum(map(len, dataset_lines(kind=kind, filters=filters_clean(kind=kind, filters=filters))))


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Files this process writes cannot grow past `limit` bytes: write() fails with EFBIG, as on a full
    disk (SIGXFSZ, which would kill the process, is ignored meanwhile)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.fixture
def partial_sizes(media, monkeypatch) -> list[int]:
    """While an export streams, the sizes of the partial files in MEDIA_ROOT/datasets (observed only)."""
    sizes: list[int] = []
    original = exports.dataset_lines

    def watched(**kwargs):
        for chunk in original(**kwargs):
            sizes.extend(p.stat().st_size for p in (media / "datasets").glob(".*.part"))
            yield chunk

    monkeypatch.setattr(exports, "dataset_lines", watched)
    return sizes


def datasets_listing(media: Path) -> list[str]:
    return sorted(p.name for p in (media / "datasets").iterdir())


@pytest.fixture(params=list(EXPORTS))
def export(request, media) -> tuple[str, dict, int]:
    kind, filters, data = EXPORTS[request.param]
    request.getfixturevalue(data)
    return kind, filters, export_size(kind, filters)


def test_a_disk_full_mid_write_records_nothing_and_removes_the_partial_file(export, media, partial_sizes):
    kind, filters, size = export
    with file_size_limit(size // 2), pytest.raises(ServiceError) as error:
        snapshot_create(kind=kind, filters=filters)
    assert error.value.code == "storage_unavailable"
    assert error.value.message.startswith(
        "Could not write the export to MEDIA_ROOT/datasets/: File too large."
    )
    assert "Nothing was recorded" in error.value.message
    assert 0 < max(partial_sizes) <= size // 2  # it failed mid-write, with part of the file on disk
    assert DatasetSnapshot.objects.count() == 0
    assert datasets_listing(media) == []

    # The database connection survived the abandoned stream, and with room again the export works.
    snapshot = snapshot_create(kind=kind, filters=filters)
    assert snapshot_path(snapshot).stat().st_size == size
    assert datasets_listing(media) == [snapshot_path(snapshot).name]


def test_a_disk_full_during_a_rounds_export_fails_the_round_with_the_message(labeler, media):
    """A round exports inside its own transaction, and an export that dies mid-stream cancels its COPY:
    the round must still record why it failed. (20 MB: Postgres is still sending when the cancel lands.)"""
    add_long_prompts(480)
    Demonstration.objects.bulk_create(
        Demonstration(prompt=prompt, author=labeler, text="A fine answer.") for prompt in Prompt.objects.all()
    )
    rnd = Round.objects.create(number=1, method="ppo", config=DEFAULTS, step="export", state={"done": []})
    with file_size_limit(256 * 1024):
        round_advance(round_id=rnd.pk)
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.FAILED
    assert rnd.error.startswith(
        "step 'export': Could not write the export to MEDIA_ROOT/datasets/: File too large."
    )
    assert DatasetSnapshot.objects.count() == 0 and datasets_listing(media) == []


@pytest.fixture
def inline_jobs(settings) -> None:
    """Export jobs run at once, in the request's thread (as a worker would run them)."""
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = "", True


def test_a_disk_full_shows_the_error_on_the_export_jobs_page(
    client, researcher, long_prompts, media, inline_jobs
):
    size = export_size("prompts", {})
    client.force_login(researcher)
    with file_size_limit(size // 2):
        response = client.post(reverse("manage:datasets"), {"kind": "prompts", "rankings": "all"})
    page = client.get(response["Location"]).content.decode()
    assert "The job failed" in page
    assert "Could not write the export to MEDIA_ROOT/datasets/: File too large." in page
    assert "No snapshots yet." in client.get(reverse("manage:datasets")).content.decode()
    assert DatasetSnapshot.objects.count() == 0 and datasets_listing(media) == []


def test_a_disk_full_fails_the_export_job_with_the_message_over_the_api(
    researcher, long_prompts, media, inline_jobs
):
    size = export_size("prompts", {})
    api = APIClient()
    api.force_authenticate(researcher)
    with file_size_limit(size // 2):
        response = api.post("/api/v1/datasets/", {"kind": "prompts"}, format="json")
    job = api.get(response.json()["url"]).json()
    assert job["status"] == "failed" and job["error_code"] == "storage_unavailable"
    assert job["message"].startswith("Could not write the export to MEDIA_ROOT/datasets/")
    assert DatasetSnapshot.objects.count() == 0 and datasets_listing(media) == []


@pytest.fixture(params=["media-root-under-a-file", "datasets-is-a-file"])
def unwritable_media(request, settings, tmp_path) -> Path:
    """A MEDIA_ROOT the export cannot write into, whoever runs it (root ignores permission bits)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a folder should be\n")
    if request.param == "media-root-under-a-file":
        settings.MEDIA_ROOT = blocker / "media"
    else:
        settings.MEDIA_ROOT = tmp_path
        blocker.rename(tmp_path / "datasets")
        blocker = tmp_path / "datasets"
    return blocker


def test_an_unwritable_media_root_is_refused_with_a_clear_message(
    client, researcher, long_prompts, unwritable_media, inline_jobs
):
    with pytest.raises(ServiceError) as error:
        snapshot_create(kind="prompts", filters={})
    assert error.value.code == "storage_unavailable"
    assert error.value.message.startswith("Could not write the export to MEDIA_ROOT/datasets/: ")

    client.force_login(researcher)
    page = client.post(reverse("manage:datasets"), {"kind": "prompts", "rankings": "all"}, follow=True)
    assert "Could not write the export" in page.content.decode()  # on the export job's page

    api = APIClient()
    api.force_authenticate(researcher)
    response = api.post("/api/v1/datasets/", {"kind": "prompts"}, format="json")
    assert api.get(response.json()["url"]).json()["error_code"] == "storage_unavailable"

    assert DatasetSnapshot.objects.count() == 0
    assert unwritable_media.read_text() == "a regular file where a folder should be\n"  # untouched
