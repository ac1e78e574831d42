import pytest

from labeling.vocab import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from tests.factories import UserFactory


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
