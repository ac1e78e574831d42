"""A snapshot row names its file by a path under MEDIA_ROOT. A row whose path leads elsewhere (an absolute
path, `..`, a symbolic link out) is refused by every reader: downloads, training runs, deletes. The file's
content is never returned."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from core.errors import ServiceError
from labeling.models import DatasetSnapshot
from labeling.services.exports import snapshot_delete
from tests.factories import UserFactory
from training.models import ModelVersion
from training.services.runs import run_start

pytestmark = pytest.mark.django_db

SECRET = "root:x:0:0:the content of a file outside MEDIA_ROOT"


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    (tmp_path / "media" / "datasets").mkdir(parents=True)
    (tmp_path / "secret.jsonl").write_text(SECRET)
    (tmp_path / "media" / "datasets" / "link.jsonl").symlink_to(tmp_path / "secret.jsonl")
    return tmp_path


@pytest.fixture(params=["absolute", "dot-dot", "symlink"])
def stray(request, media):
    """A snapshot row whose stored path resolves to tmp_path/secret.jsonl, outside MEDIA_ROOT."""
    file = {
        "absolute": str(media / "secret.jsonl"),
        "dot-dot": "datasets/../../secret.jsonl",
        "symlink": "datasets/link.jsonl",
    }[request.param]
    return DatasetSnapshot.objects.create(kind="sft", row_count=1, sha256="0" * 64, file=file)


@pytest.fixture
def researcher(client):
    user = UserFactory(username="sci", roles=["researcher"])
    client.force_login(user)
    return user


def test_the_api_refuses_to_serve_it(stray, researcher):
    api = APIClient()
    api.force_authenticate(researcher)
    response = api.get(f"/api/v1/datasets/{stray.pk}/download/")
    assert response.status_code == 404 and response.json()["code"] == "path_outside_media"
    assert f"snapshot {stray.pk}'s stored path does not lie under MEDIA_ROOT" in response.json()["detail"]
    assert SECRET not in response.content.decode()


def test_the_datasets_page_refuses_to_serve_it(client, stray, researcher):
    response = client.get(reverse("manage:dataset_download", args=[stray.pk]))
    assert response.status_code == 404
    assert SECRET not in b"".join(getattr(response, "streaming_content", [response.content])).decode()


def test_a_training_run_is_refused_before_it_is_queued(stray, settings):
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = "", True
    base = ModelVersion.objects.create(name="base", kind="base", checkpoint="base-model")
    with pytest.raises(ServiceError, match="does not lie under MEDIA_ROOT") as refused:
        run_start(kind="sft", base_model=base, snapshots=[stray])
    assert refused.value.code == "path_outside_media" and SECRET not in refused.value.message


def test_deleting_the_row_leaves_the_file_it_names(
    stray, media, researcher, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        snapshot_delete(snapshot=stray, actor=researcher)
    assert not DatasetSnapshot.objects.filter(pk=stray.pk).exists()
    assert (media / "secret.jsonl").read_text() == SECRET
