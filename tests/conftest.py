import pytest

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from tests.factories import UserFactory


def pytest_collection_modifyitems(items):
    """Every transactional test restores the database's first contents (serialized_rollback).

    A plain transactional test ends with a flush that re-runs post_migrate, which makes the role groups
    again under new ids; a serialized_rollback test that follows it then inserts the saved groups and hits
    their unique names. With every transactional test serialized, no flush emits post_migrate and each
    test starts from the migrated database, whatever order the tests run in.
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction") and "serialized_rollback" not in marker.kwargs:
            item.add_marker(pytest.mark.django_db(**marker.kwargs, serialized_rollback=True), append=False)


@pytest.fixture
def labeler(db):
    return UserFactory(username="lab1", roles=[ROLE_LABELER])


@pytest.fixture
def other_labeler(db):
    return UserFactory(username="lab2", roles=[ROLE_LABELER])


@pytest.fixture
def batch_admin(db):
    return UserFactory(username="boss", roles=[ROLE_BATCH_ADMIN])


@pytest.fixture
def researcher(db):
    return UserFactory(username="sci", roles=[ROLE_RESEARCHER])
