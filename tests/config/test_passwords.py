"""Password rules (AUTH_PASSWORD_VALIDATORS): at least 12 characters, not common, not all digits, not
like the username. Enforced where passwords are set: the change-password page and the admin."""

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.mark.parametrize(
    "weak, why",
    [
        ("Tr0ub4dor&3", "at least 12 characters"),
        ("password1234", "too common"),
        ("804957261938", "entirely numeric"),
        ("ada-lovelace-1815", "too similar to the username"),
    ],
)
def test_weak_passwords_are_refused(weak, why):
    user = UserFactory.build(username="ada-lovelace")
    with pytest.raises(ValidationError, match=why):
        validate_password(weak, user)


def test_the_change_password_page_refuses_a_weak_password(client):
    ada = UserFactory(username="ada")
    client.force_login(ada)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "short-pass", "new_password2": "short-pass"},
    )
    assert response.status_code == 200 and "at least 12 characters" in response.content.decode()
    ada.refresh_from_db()
    assert ada.check_password(PASSWORD)


def test_the_change_password_page_takes_a_strong_one(client):
    ada = UserFactory(username="ada")
    client.force_login(ada)
    strong = "violet-anchor-gravel-91"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": strong, "new_password2": strong},
    )
    assert response.status_code == 302 and response["Location"] == reverse("password_change_done")
    ada.refresh_from_db()
    assert ada.check_password(strong)
    assert "Password changed" in client.get(reverse("password_change_done")).content.decode()


def test_the_admin_refuses_a_weak_password_for_a_new_user(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    response = client.post(
        reverse("admin:auth_user_add"),
        {"username": "newbie", "usable_password": "true", "password1": "abc123", "password2": "abc123"},
    )
    assert response.status_code == 200 and "at least 12 characters" in response.content.decode()
    assert not UserFactory._meta.model.objects.filter(username="newbie").exists()
