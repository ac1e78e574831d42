"""Onboarding in the browser: a batch admin creates a labeler, who logs in with the password shown once and
starts work; a reset password replaces it; taking the labeler role stops the work. Each step is audited."""

import re

import pytest
from django.contrib.auth.models import Group

from audit.models import Action, AuditEvent
from core.roles import ROLE_BATCH_ADMIN
from tests.factories import UserFactory

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def _new_password(page) -> str:
    return page.locator("code.secret").inner_text().strip()


def _log_in_as(browser, base_url: str, username: str, password: str):
    context = browser.new_context(base_url=base_url)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    return context, page


def test_a_batch_admin_onboards_a_labeler_who_then_logs_in(browser, live_server, watched):
    team = Group.objects.create(name="team-north")
    UserFactory(username="boss", roles=[ROLE_BATCH_ADMIN]).groups.add(team)
    page = watched.page
    log_in(page, "boss")
    page.get_by_role("link", name="People").first.click()
    page.fill("#id_username", "newbie")
    page.fill("#id_display_name", "New Bie")
    page.click("button:has-text('Create labeler')")
    first = _new_password(page)
    assert page.get_by_role("heading", name="Password for newbie").is_visible() and len(first) >= 12
    row = page.locator("tr", has_text="newbie")
    assert "yes" in row.locator("td").nth(3).inner_text()  # the labeler role comes with the account

    context, labeler = _log_in_as(browser, live_server.url, "newbie", first)
    labeler.wait_for_url(re.compile(r"/$"))
    assert labeler.get_by_role("link", name="My submissions").is_visible()  # the labeler's navigation
    context.close()

    page.reload()
    assert page.locator("code.secret").count() == 0  # shown once only
    page.locator("tr", has_text="newbie").get_by_role("button", name="Reset password").click()
    second = _new_password(page)
    assert second != first
    context, refused = _log_in_as(browser, live_server.url, "newbie", first)
    assert "/accounts/login/" in refused.url  # the old password no longer opens the door
    context.close()

    page.locator("tr", has_text="newbie").get_by_role("button", name="Take the labeler role").click()
    assert "no" in page.locator("tr", has_text="newbie").locator("td").nth(3).inner_text()
    context, former = _log_in_as(browser, live_server.url, "newbie", second)
    former.wait_for_url(re.compile(r"/$"))
    assert former.get_by_role("link", name="My submissions").count() == 0  # no labeler's pages any more
    context.close()

    done = set(AuditEvent.objects.filter(actor_name="boss").values_list("action", flat=True))
    assert {Action.LABELER_CREATED, Action.PASSWORD_RESET, Action.ROLE_REVOKED} <= done
    assert not watched.errors and not watched.dialogs
