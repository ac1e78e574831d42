"""The data explorer in a real browser: a researcher opens it from the navigation, filters rankings by
labeler and agreement, searches, follows the pages, and opens a task to see every label on it."""

import re

import pytest

from core.roles import ROLE_LABELER, ROLE_RESEARCHER
from tests.factories import BatchFactory, PromptFactory, UserFactory, ranking_task
from tests.labeling.explorer_world import rank

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_a_researcher_filters_searches_and_opens_a_task(watched):
    page = watched.page
    UserFactory(username="rex", roles=[ROLE_RESEARCHER])
    ada, bob = (UserFactory(username=n, roles=[ROLE_LABELER]) for n in ("ada", "bob"))
    batch = BatchFactory(name="Rivers and haiku")
    rivers = ranking_task(batch, k=3, prompt=PromptFactory(text="Name three **rivers** of Europe"))
    haiku = ranking_task(batch, k=3, prompt=PromptFactory(text="Write a haiku about snow"))
    rank(rivers, ada, "A>B>C", comment="B forgets the Danube", flags={"C": ["hallucination"]})
    rank(rivers, bob, "C>B>A")
    rank(haiku, ada, "A>B=C")
    rank(haiku, bob, "A>B=C")

    log_in(page, "rex")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Explore").click()
    page.wait_for_url(re.compile(r"/explore/rankings/$"))
    rows = page.locator("table.ex-table tbody tr")
    assert rows.count() == 4

    page.select_option("#id_labeler", label="ada")
    page.fill("#id_agreement_max", "50")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"labeler=ada.*agreement_max=50"))
    assert rows.count() == 1 and "rivers" in rows.first.inner_text()
    assert "1 ranking matches" in page.locator("#ex-results").inner_text()

    page.get_by_role("link", name="Clear").click()
    page.fill("#id_q", "haiku")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=haiku"))
    assert rows.count() == 2 and all("haiku" in t for t in rows.all_inner_texts())

    page.get_by_role("link", name="Clear").click()
    page.select_option("#id_flag", value="hallucination")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"flag=hallucination"))
    assert rows.count() == 1
    rows.first.get_by_role("link").first.click()
    page.wait_for_url(re.compile(rf"/explore/tasks/{rivers.pk}/#ranking-\d+$"))

    assert page.locator("#prompt-text strong").inner_text() == "rivers"
    labels = page.locator("article.ex-label")
    assert labels.count() == 2
    assert "ada: A > B > C" in labels.nth(0).inner_text() and "bob: C > B > A" in labels.nth(1).inner_text()
    assert "B forgets the Danube" in labels.nth(0).inner_text()
    assert "Hallucination" in labels.nth(0).inner_text()
    assert "Pairwise agreement: 0%" in page.locator("#ex-agreement").locator("..").inner_text()
    assert watched.errors == [] and watched.dialogs == []
