"""CSRF: the browser's session writes to the API need the token (DRF's SessionAuthentication enforces it),
the login form needs it, and every POST form on our pages carries it."""

import re

import pytest
from django.test import Client

from labeling.models import Batch
from tests.factories import BatchFactory, UserFactory
from tests.site_pages import build_site

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def csrf_token(client: Client) -> str:
    client.get("/accounts/login/")  # any page with a form sets the cookie
    return client.cookies["csrftoken"].value


def test_a_session_post_to_the_api_without_the_token_is_refused(batch_admin):
    batch = BatchFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(batch_admin)
    response = client.post(f"/api/v1/batches/{batch.pk}/pause/")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    batch.refresh_from_db()
    assert batch.status == Batch.Status.ACTIVE
    response = client.post(f"/api/v1/batches/{batch.pk}/pause/", HTTP_X_CSRFTOKEN=csrf_token(client))
    assert response.status_code == 200 and response.json()["status"] == "paused"


def test_a_token_authenticated_call_needs_no_csrf_token(batch_admin):
    """Scripts send no cookies, so a cross-site page cannot ride on their token: no CSRF check applies."""
    from knox.models import AuthToken

    batch = BatchFactory()
    client = Client(enforce_csrf_checks=True)
    key = AuthToken.objects.create(user=batch_admin)[1]
    response = client.post(f"/api/v1/batches/{batch.pk}/pause/", HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 200


def test_the_login_form_needs_the_token():
    UserFactory(username="ada")
    client = Client(enforce_csrf_checks=True)
    response = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == 403 and "_auth_user_id" not in client.session
    token = csrf_token(client)
    response = client.post(
        "/accounts/login/", {"username": "ada", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and "_auth_user_id" in client.session


FORM = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def post_forms_without_token(html: str) -> list[str]:
    return [
        form[:120]
        for form in FORM.findall(html)
        if re.search(r'method="post"', form, re.I) and 'name="csrfmiddlewaretoken"' not in form
    ]


def test_every_post_form_carries_the_token(client):
    checked = 0
    for username, pages in build_site().items():
        client.force_login(UserFactory._meta.model.objects.get(username=username))
        for url in pages:
            response = client.get(url)
            assert response.status_code == 200, (username, url)
            html = response.content.decode()
            assert post_forms_without_token(html) == [], (username, url)
            checked += html.lower().count('method="post"')
    assert checked > 20
