"""API tokens (django-rest-knox): stored hashed, a new one each time, they expire, a user holds a bounded
number, the owner (or a batch admin of their team) lists and revokes them, and a password change by any
path or "log out everywhere" revokes them all. Creation and revocation are in the audit log."""

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from audit.models import AuditEvent
from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


@pytest.fixture
def ada(db):
    return UserFactory(username="ada", roles=[ROLE_RESEARCHER])


def obtain(username: str = "ada", password: str = PASSWORD):
    return APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": password}, format="json"
    )


def as_token(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def works(secret: str) -> bool:
    return as_token(secret).get("/api/v1/auth/tokens/").status_code == 200


def team(name: str, *users) -> Group:
    group = Group.objects.create(name=name)
    group.user_set.add(*users)
    return group


def test_a_token_is_stored_hashed_and_its_secret_is_shown_once(ada):
    answer = obtain()
    assert answer.status_code == 200
    secret, prefix = answer.data["token"], answer.data["prefix"]
    stored = AuthToken.objects.get(user=ada)
    assert stored.digest == hashlib.sha512(secret.encode()).hexdigest() and secret.startswith(prefix)
    assert secret not in str(AuthToken.objects.values_list().get())
    listed = as_token(secret).get("/api/v1/auth/tokens/")
    assert listed.status_code == 200 and secret not in listed.content.decode()
    assert listed.data["results"] == [
        {"prefix": prefix, "created": listed.data["results"][0]["created"], "expiry": answer.data["expiry"]}
    ]


def test_each_request_gets_a_new_token(ada):
    first, second = obtain().data["token"], obtain().data["token"]
    assert first != second and works(first) and works(second)


def test_a_token_expires_after_its_lifetime(ada, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(hours=2)}
    answer = obtain()
    token = AuthToken.objects.get(user=ada)
    assert timedelta(hours=2) - (token.expiry - token.created) < timedelta(seconds=5)
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))
    refused = as_token(answer.data["token"]).get("/api/v1/auth/tokens/")
    assert refused.status_code == 401 and refused.data["detail"] == "Token expired."
    assert refused["WWW-Authenticate"] == "Token" and not AuthToken.objects.exists()


def test_a_user_holds_at_most_the_token_limit(ada, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_LIMIT_PER_USER": 2}
    first = obtain().data
    obtain()
    refused = obtain()
    assert refused.status_code == 400 and refused.data["code"] == "token_limit"
    assert "API_TOKEN_LIMIT_PER_USER" in refused.data["detail"] and AuthToken.objects.count() == 2
    assert as_token(first["token"]).delete(f"/api/v1/auth/tokens/{first['prefix']}/").status_code == 204
    assert obtain().status_code == 200
    AuthToken.objects.update(expiry=timezone.now() - timedelta(seconds=1))  # expired ones do not count
    assert obtain().status_code == 200 and AuthToken.objects.count() == 1


def test_the_owner_revokes_a_token_and_nobody_else_does(ada):
    mine, spare = obtain().data, obtain().data
    other = UserFactory(username="bob", roles=[ROLE_LABELER])
    theirs = obtain("bob").data
    client = as_token(mine["token"])
    assert client.delete(f"/api/v1/auth/tokens/{theirs['prefix']}/").status_code == 404
    assert as_token(theirs["token"]).delete(f"/api/v1/auth/tokens/{spare['prefix']}/").status_code == 404
    assert works(theirs["token"]) and works(spare["token"])
    assert client.delete(f"/api/v1/auth/tokens/{spare['prefix']}/").status_code == 204
    assert (
        not works(spare["token"]) and works(mine["token"]) and AuthToken.objects.filter(user=other).exists()
    )


def test_a_batch_admin_lists_and_revokes_tokens_of_their_teams_labelers_only(db):
    boss = UserFactory(username="boss", roles=[ROLE_BATCH_ADMIN])
    lab1 = UserFactory(username="lab1", roles=[ROLE_LABELER])
    lab2 = UserFactory(username="lab2", roles=[ROLE_LABELER])
    peer = UserFactory(username="peer", roles=[ROLE_BATCH_ADMIN, ROLE_LABELER])
    team("team-north", boss, lab1, peer)
    team("team-south", lab2)
    secrets = {name: obtain(name).data for name in ("boss", "lab1", "lab2", "peer")}
    client = as_token(secrets["boss"]["token"])
    listed = client.get("/api/v1/auth/team-tokens/").data["results"]
    assert [(t["owner"], t["prefix"]) for t in listed] == [("lab1", secrets["lab1"]["prefix"])]
    for outsider in ("lab2", "peer"):  # another team; a fellow batch admin
        assert client.delete(f"/api/v1/auth/tokens/{secrets[outsider]['prefix']}/").status_code == 404
        assert works(secrets[outsider]["token"])
    assert client.delete(f"/api/v1/auth/tokens/{secrets['lab1']['prefix']}/").status_code == 204
    assert not works(secrets["lab1"]["token"])
    assert as_token(secrets["lab2"]["token"]).get("/api/v1/auth/team-tokens/").status_code == 403


def test_log_out_everywhere_revokes_every_token_and_ends_the_other_sessions(ada):
    secrets = [obtain().data["token"] for _ in range(2)]
    here, elsewhere = APIClient(), Client()
    here.force_login(ada)
    elsewhere.force_login(ada)
    answer = here.post("/api/v1/auth/logout-everywhere/")
    assert answer.status_code == 200 and answer.data == {"tokens": 2, "sessions": 1}
    assert not any(works(secret) for secret in secrets)
    assert here.get("/api/v1/auth/tokens/").status_code == 200  # the session that asked stays
    assert elsewhere.get("/accounts/tokens/").status_code == 302  # to the login page
    by_token = obtain().data["token"]
    assert as_token(by_token).post("/api/v1/auth/logout-everywhere/").data == {"tokens": 1, "sessions": 1}
    assert here.get("/api/v1/auth/tokens/").status_code == 401  # asked with a token: every session ends


def _set_password(user, new: str) -> None:
    user.set_password(new)
    user.save()


def _password_page(user, new: str) -> None:
    client = Client()
    client.force_login(user)
    data = {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    assert client.post("/accounts/password/", data).status_code == 302


def _admin(user, new: str) -> None:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    response = client.post(f"/admin/auth/user/{user.pk}/password/", {"password1": new, "password2": new})
    assert response.status_code == 302


def _changepassword_command(user, new: str, monkeypatch) -> None:
    monkeypatch.setattr(
        "django.contrib.auth.management.commands.changepassword.getpass.getpass", lambda *a, **k: new
    )
    call_command("changepassword", user.username)


@pytest.mark.parametrize("path", ["set_password", "password page", "admin", "changepassword"])
def test_a_password_change_by_any_path_revokes_the_users_tokens(ada, path, monkeypatch):
    bob = UserFactory(username="bob", roles=[ROLE_LABELER])
    secrets, bobs = [obtain().data["token"] for _ in range(2)], obtain("bob").data["token"]
    new = "a-new-and-long-passphrase"
    if path == "changepassword":
        _changepassword_command(ada, new, monkeypatch)
    else:
        {"set_password": _set_password, "password page": _password_page, "admin": _admin}[path](ada, new)
    assert not AuthToken.objects.filter(user=ada).exists() and not any(works(s) for s in secrets)
    assert works(bobs) and AuthToken.objects.filter(user=bob).exists()
    event = AuditEvent.objects.get(action="token.revoked")
    assert event.object_id == str(ada.pk) and event.details["reason"] == "password changed"
    assert len(event.details["tokens"]) == 2


def test_saving_a_user_without_a_new_password_keeps_the_tokens(ada):
    secret = obtain().data["token"]
    ada.first_name = "Ada"
    ada.save()
    ada.refresh_from_db()
    ada.save(update_fields=["last_login"])
    assert works(secret)


def test_a_password_rehashed_at_login_keeps_the_tokens(ada, settings):
    """Django re-hashes a password with a stronger hasher at login: the same password, so tokens stay."""
    secret = obtain().data["token"]
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert authenticate(username="ada", password=PASSWORD) is not None
    ada.refresh_from_db()
    assert ada.password.startswith("pbkdf2_") and works(secret)


def test_token_creation_and_revocation_are_audited(ada):
    answer = obtain().data
    created = AuditEvent.objects.get(action="token.created")
    assert created.actor == ada and created.object_id == str(ada.pk)
    assert created.details["token"] == answer["prefix"]
    as_token(answer["token"]).delete(f"/api/v1/auth/tokens/{answer['prefix']}/")
    revoked = AuditEvent.objects.get(action="token.revoked")
    assert revoked.actor == ada and revoked.details == {"tokens": [answer["prefix"]], "reason": "revoked"}


@pytest.mark.parametrize("header", [b"Token \xff\xfe", b"Token abc\x00def", b"Token " + b"0" * 64, b"Token"])
def test_a_bad_token_is_a_401_naming_the_scheme(ada, header):
    obtain()
    response = APIClient().get("/api/v1/auth/tokens/", HTTP_AUTHORIZATION=header.decode("latin-1"))
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_the_schema_documents_one_token_scheme(ada):
    client = APIClient()
    client.force_login(ada)
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert set(schema["components"]["securitySchemes"]) == {"knoxApiToken", "cookieAuth"}
    for path in (
        "/api/v1/auth/tokens/",
        "/api/v1/auth/tokens/{prefix}/",
        "/api/v1/prompts/",
        "/api/v1/training-runs/",
    ):
        for operation in schema["paths"][path].values():
            assert {"knoxApiToken": []} in operation["security"], path


def test_the_hourly_sweep_deletes_expired_tokens_and_keeps_live_ones(ada):
    from django_celery_beat.models import PeriodicTask

    from labeling.tasks import delete_expired_tokens

    expired, live = obtain().data["token"], obtain().data["token"]
    AuthToken.objects.filter(token_key=expired[:15]).update(expiry=timezone.now() - timedelta(seconds=1))

    assert delete_expired_tokens() == 1
    assert list(AuthToken.objects.values_list("token_key", flat=True)) == [live[:15]] and works(live)
    sweep = PeriodicTask.objects.get(task="labeling.tasks.delete_expired_tokens")  # migration 0017
    assert sweep.enabled and (sweep.interval.every, sweep.interval.period) == (1, "hours")
