"""What every response carries (the suite runs with DEBUG off, as production does): the CSP, no
framing, no sniffing, the referrer policy, HSTS over HTTPS; and the cookies' flags."""

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def test_pages_carry_the_security_headers(client):
    response = client.get("/accounts/login/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    policy = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["img-src"] == "'self' data:" and policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert "unsafe" not in response["Content-Security-Policy"]


def test_the_api_and_the_admin_carry_them_too(client):
    for url in ("/api/v1/auth/token/", "/admin/login/"):
        response = client.get(url)
        assert "script-src 'self'" in response["Content-Security-Policy"], url
        assert response["X-Frame-Options"] == "DENY", url


def test_hsts_over_https(client):
    response = client.get("/accounts/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_the_session_and_csrf_cookies_are_secure_and_httponly(client):
    UserFactory(username="ada")
    page = client.get("/accounts/login/")
    csrf = page.cookies["csrftoken"]
    assert csrf["httponly"] and csrf["secure"] and csrf["samesite"] == "Lax"
    response = client.post(
        "/accounts/login/",
        {"username": "ada", "password": PASSWORD, "csrfmiddlewaretoken": csrf.value},
    )
    session = response.cookies["sessionid"]
    assert session["httponly"] and session["secure"] and session["samesite"] == "Lax"
