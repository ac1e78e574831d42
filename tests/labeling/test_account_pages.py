"""The account pages: my API tokens (a new one's secret shown once), revoking, "log out everywhere", and a
batch admin's page of their team's tokens."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from knox.models import AuthToken

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def signed_in_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def lab1(db):
    return UserFactory(username="lab1", roles=[ROLE_LABELER])


def test_a_new_tokens_secret_is_shown_once(lab1):
    client = signed_in_as(lab1)
    made = client.post("/accounts/tokens/")
    token = AuthToken.objects.get(user=lab1)
    secret = made.context["secret"]
    assert made.status_code == 200 and secret in made.content.decode() and secret.startswith(token.token_key)
    assert "no-store" in made["Cache-Control"]
    page = client.get("/accounts/tokens/").content.decode()
    assert token.token_key in page and secret not in page


def test_the_owner_revokes_from_the_page_and_nobody_else_can(lab1):
    token, _ = AuthToken.objects.create(user=lab1)
    other = signed_in_as(UserFactory(username="lab2", roles=[ROLE_LABELER]))
    assert other.post(f"/accounts/tokens/{token.token_key}/revoke/").status_code == 404
    response = signed_in_as(lab1).post(f"/accounts/tokens/{token.token_key}/revoke/", follow=True)
    assert f"Token {token.token_key} revoked." in response.content.decode()
    assert not AuthToken.objects.exists()


def test_log_out_everywhere_from_the_page_keeps_this_browser(lab1):
    AuthToken.objects.create(user=lab1)
    here, elsewhere = signed_in_as(lab1), signed_in_as(lab1)
    response = here.post("/accounts/logout-everywhere/", follow=True)
    assert "1 API token revoked, 1 other session ended" in response.content.decode()
    assert not AuthToken.objects.exists()
    assert here.get("/accounts/tokens/").status_code == 200
    assert elsewhere.get("/accounts/tokens/").status_code == 302


def test_a_batch_admin_sees_and_revokes_their_teams_tokens_only(lab1):
    boss = UserFactory(username="boss", roles=[ROLE_BATCH_ADMIN])
    lab2 = UserFactory(username="lab2", roles=[ROLE_LABELER])
    Group.objects.create(name="team-north").user_set.add(boss, lab1)
    mine, _ = AuthToken.objects.create(user=lab1)
    theirs, _ = AuthToken.objects.create(user=lab2)
    client = signed_in_as(boss)
    page = client.get("/accounts/team-tokens/").content.decode()
    assert mine.token_key in page and "lab1" in page and theirs.token_key not in page and "lab2" not in page
    assert client.post(f"/accounts/tokens/{theirs.token_key}/revoke/").status_code == 404
    assert client.post(f"/accounts/tokens/{mine.token_key}/revoke/").status_code == 302
    assert list(AuthToken.objects.values_list("user__username", flat=True)) == ["lab2"]
    assert signed_in_as(lab1).get("/accounts/team-tokens/").status_code == 403
