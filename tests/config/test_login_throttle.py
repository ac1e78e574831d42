"""Login throttling (django-axes with core.login_throttle's rules), on the login page, the admin's login,
the API token endpoint and the password page's old-password check:

- five failed logins for one username from one address lock that pair out, even with the right password;
- LOGIN_ADDRESS_FAILURE_LIMIT failures from one address, whatever the usernames, lock the address out;
- LOGIN_USERNAME_FAILURE_LIMIT failures of one username from any addresses start a wait that doubles with
  each further failure, at most LOGIN_USERNAME_MAX_WAIT_SECONDS: a slow-down, never a lock;
- none of these holds up a browser that logged in as that username before (its device cookie), so
  nobody behind the same address can lock a colleague out; it has five failures of its own.
Locks lift as the failures age out (the cool-off) or with axes_reset."""

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.db.models import F, Sum
from django.test import Client, RequestFactory
from django.utils import timezone

from core.login_throttle import DEVICE_COOKIE, client_ip
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


@pytest.fixture(autouse=True)
def throttling(settings):
    settings.AXES_ENABLED = True  # off for the rest of the suite (config/test_settings.py)
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timezone.timedelta(minutes=15)
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 30
    settings.LOGIN_USERNAME_FAILURE_LIMIT = 10
    settings.LOGIN_USERNAME_MAX_WAIT_SECONDS = 300


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
    return client.post(
        "/api/v1/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


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


# --- across usernames, across addresses, the device cookie, the old-password check --------------------


def age(seconds: float) -> None:
    """Let `seconds` pass for every recorded failure."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timezone.timedelta(seconds=seconds))


def test_spraying_many_usernames_from_one_address_is_refused(client, ada):
    statuses = [log_in(client, f"user{n}", "Summer2024!").status_code for n in range(120)]
    assert statuses[:29] == [200] * 29 and set(statuses[29:]) == {429}  # the 30th failure locks the address
    refused = log_in(client, "ada", PASSWORD)
    assert refused.status_code == 429 and "from your address" in refused.content.decode()
    assert 890 <= int(refused["Retry-After"]) <= 900
    assert AccessAttempt.objects.aggregate(n=Sum("failures_since_start"))["n"] == 30  # refusals not counted
    assert log_in(Client(), "ada", PASSWORD, address="198.51.100.4").status_code == 302  # other addresses
    age(15 * 60 + 1)
    assert log_in(client, "ada", PASSWORD).status_code == 302 and signed_in(client)


def test_the_token_endpoint_refuses_a_spraying_address_too(client, ada):
    for n in range(30):
        token(client, f"user{n}", "wrong")
    response = token(client, "ada", PASSWORD)
    assert response.status_code == 429 and "from your address" in response.json()["detail"]


def test_a_username_guessed_from_many_addresses_waits_a_little_never_locks(client, ada):
    for n in range(10):
        fail(client, "ada", 1, address=f"192.0.2.{n}")
    refused = log_in(Client(), "ada", PASSWORD, address="198.51.100.4")
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    assert "several addresses" in refused.content.decode()
    age(1)
    assert (
        log_in(Client(), "ada", PASSWORD, address="198.51.100.4").status_code == 302
    )  # after the short wait
    AccessAttempt.objects.create(  # ten more failures (each waited for): 2**10 seconds, capped
        username="ada",
        ip_address="192.0.2.99",
        user_agent="bot",
        failures_since_start=10,
        get_data="",
        post_data="",
        http_accept="",
        path_info="/accounts/login/",
    )
    refused = log_in(Client(), "ada", PASSWORD, address="198.51.100.5")
    assert refused.status_code == 429 and refused["Retry-After"] == "300"
    age(301)
    assert log_in(Client(), "ada", PASSWORD, address="198.51.100.5").status_code == 302


def test_attempts_refused_during_the_wait_do_not_make_it_longer(client, ada):
    for n in range(12):
        fail(client, "ada", 1, address=f"192.0.2.{n}")
    counted = AccessAttempt.objects.aggregate(n=Sum("failures_since_start"))["n"]
    for n in range(5):
        assert log_in(Client(), "ada", "wrong-again", address=f"198.51.100.{n}").status_code == 429
    assert AccessAttempt.objects.aggregate(n=Sum("failures_since_start"))["n"] == counted


def test_nobody_behind_the_same_address_locks_you_out_of_your_browser(client, ada):
    assert log_in(client, "ada", PASSWORD).status_code == 302  # ada's browser: gets its device cookie
    client.post("/accounts/logout/", REMOTE_ADDR="203.0.113.7")
    colleague = Client()
    assert fail(colleague, "ada", 6)[-2:] == [429, 429]  # the pair is locked...
    for n in range(30):  # ...the address too, and the username waits
        log_in(colleague, f"user{n}", "wrong", address="203.0.113.7")
    for n in range(12):
        log_in(Client(), "ada", "wrong", address=f"192.0.2.{n}")
    assert log_in(colleague, "ada", PASSWORD).status_code == 429
    assert log_in(client, "ada", PASSWORD).status_code == 302 and signed_in(client)  # but not ada's browser


def test_a_known_browser_has_five_failures_of_its_own(client, ada):
    log_in(client, "ada", PASSWORD)
    client.post("/accounts/logout/", REMOTE_ADDR="203.0.113.7")
    fail(Client(), "ada", 5)  # a stranger locks the pair
    assert fail(client, "ada", 5) == [200] * 4 + [429]  # the browser's own five use up its budget...
    assert log_in(client, "ada", PASSWORD).status_code == 429  # ...and the pair's lock holds it too


def test_a_device_cookie_counts_for_its_own_username_only_and_cannot_be_forged(client, ada):
    UserFactory(username="bob")
    log_in(client, "bob", PASSWORD)
    client.post("/accounts/logout/", REMOTE_ADDR="203.0.113.7")
    fail(client, "ada", 5)
    assert log_in(client, "ada", PASSWORD).status_code == 429  # bob's cookie does not help with ada
    client.cookies[DEVICE_COOKIE] = client.cookies[DEVICE_COOKIE].value.replace("bob", "ada")
    assert log_in(client, "ada", PASSWORD).status_code == 429


def change_password(client, old: str, address: str = "203.0.113.7"):
    new = "a-new-and-long-passphrase"
    data = {"old_password": old, "new_password1": new, "new_password2": new}
    return client.post("/accounts/password/", data, REMOTE_ADDR=address)


def test_the_old_password_check_is_throttled(client, ada):
    client.force_login(ada)
    assert [change_password(client, "guess").status_code for _ in range(5)] == [200] * 4 + [429]
    refused = change_password(client, PASSWORD)
    assert refused.status_code == 429 and "Too many failed logins" in refused.content.decode()
    ada.refresh_from_db()
    assert ada.check_password(PASSWORD)  # unchanged
    assert change_password(client, PASSWORD, address="198.51.100.4").status_code == 302


def test_old_password_guesses_and_login_failures_count_together(client, ada):
    fail(Client(), "ada", 3)
    client.force_login(ada)
    assert [change_password(client, "guess").status_code for _ in range(2)] == [200, 429]
    assert log_in(Client(), "ada", PASSWORD).status_code == 429
