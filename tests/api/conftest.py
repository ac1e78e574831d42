import pytest
from rest_framework.test import APIClient

from tests.api.world import build_world


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def world(db, media):
    return build_world()


@pytest.fixture
def client_as(world):
    def make(role: str | None) -> APIClient:
        client = APIClient()
        if role is not None:
            client.force_authenticate(world["users"][role])
        return client

    return make
