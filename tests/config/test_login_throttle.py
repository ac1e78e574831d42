"""Login throttling (django-axes): five failed logins for one username from one address lock that pair
out, even with the right password, on the login page, the admin's login and the API token endpoint.
Other users and other addresses are not affected; the lock lifts after the cool-off or with axes_reset."""

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import RequestFactory
from django.utils import timezone

from config.login_throttle import client_ip
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


@pytest.fixture(autouse=True)
def throttling(settings):
    settings.AXES_ENABLED = True  # off for the rest of the suite (config/test_settings.py)
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timezone.timedelta(minutes=15)


@pytest.fixture
def ada(db):
    return UserFactory(username="ada")


def log_in(client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, username: str, times: int, address: str = "203.0.113.7"):
    return [log_in(client, username, "wrong-password", address).status_code for _ in range(times)]


def test_five_failures_lock_the_username_even_with_the_right_password(client, ada):
    assert fail(client, "ada", 4) == [200] * 4  # the login page again, with its error
    assert fail(client, "ada", 1) == [429]
    response = log_in(client, "ada", PASSWORD)
    assert response.status_code == 429 and not signed_in(client)


def test_the_lockout_page_says_why_and_for_how_long(client, ada):
    fail(client, "ada", 5)
    response = log_in(client, "ada", PASSWORD)
    page = response.content.decode()
    assert "Too many failed logins" in page and "15 minutes" in page
    assert 'class="topbar"' in page and "app.css" in page  # our base layout
    assert response["Retry-After"] == "900"
    assert "Content-Security-Policy" in response


def test_other_users_and_other_addresses_are_not_affected(client, ada):
    UserFactory(username="bob")
    fail(client, "ada", 5)
    assert log_in(client, "bob", PASSWORD).status_code == 302 and signed_in(client)
    client.logout()
    assert log_in(client, "ada", PASSWORD, address="198.51.100.4").status_code == 302 and signed_in(client)


def test_a_success_before_the_limit_starts_the_count_again(client, ada):
    fail(client, "ada", 4)
    assert log_in(client, "ada", PASSWORD).status_code == 302
    client.logout()
    assert fail(client, "ada", 4) == [200] * 4
    assert log_in(client, "ada", PASSWORD).status_code == 302


def test_axes_reset_lifts_the_lock(client, ada):
    fail(client, "ada", 5)
    call_command("axes_reset")
    assert log_in(client, "ada", PASSWORD).status_code == 302 and signed_in(client)


def test_the_lock_lifts_after_the_cool_off(client, ada):
    fail(client, "ada", 5)
    assert log_in(client, "ada", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timezone.timedelta(minutes=16))
    assert log_in(client, "ada", PASSWORD).status_code == 302 and signed_in(client)


def test_the_admin_login_is_throttled_too(client):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    for _ in range(5):
        response = client.post(
            "/admin/login/", {"username": "root", "password": "nope"}, REMOTE_ADDR="203.0.113.7"
        )
    assert response.status_code == 429
    response = client.post(
        "/admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR="203.0.113.7"
    )
    assert response.status_code == 429 and not signed_in(client)


def token(client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post("/api/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_token_endpoint_is_throttled(client, ada):
    assert [token(client, "ada", "wrong").status_code for _ in range(4)] == [400] * 4
    response = token(client, "ada", "wrong")
    assert response.status_code == 429
    response = token(client, "ada", PASSWORD)
    assert response.status_code == 429 and "token" not in response.json()
    assert response.json()["code"] == "throttled" and "Too many failed logins" in response.json()["detail"]
    assert response["Retry-After"] == "900"
    assert token(client, "ada", PASSWORD, address="198.51.100.4").json()["token"]


def test_token_and_page_failures_count_together(client, ada):
    fail(client, "ada", 3)
    assert [token(client, "ada", "wrong").status_code for _ in range(2)] == [400, 429]
    assert log_in(client, "ada", PASSWORD).status_code == 429


def test_a_locked_out_token_request_gets_the_token_once_reset(client, ada):
    [token(client, "ada", "wrong") for _ in range(5)]
    call_command("axes_reset_username", "ada")
    assert token(client, "ada", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    "proxies, forwarded, expected",
    [
        (0, "", "10.0.0.2"),
        (0, "198.51.100.1", "10.0.0.2"),  # no trusted proxy: the header is the client's to forge
        (1, "198.51.100.1", "198.51.100.1"),
        (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # what the client put in front is ignored
        (2, "6.6.6.6, 198.51.100.1, 10.1.1.1", "198.51.100.1"),
        (2, "198.51.100.1", "10.0.0.2"),  # fewer entries than proxies: not through them, so REMOTE_ADDR
    ],
)
def test_the_client_address_behind_trusted_proxies(settings, proxies, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    meta = {"REMOTE_ADDR": "10.0.0.2"} | ({"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {})
    assert client_ip(RequestFactory().get("/", **meta)) == expected
