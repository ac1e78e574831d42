"""Drafts a task page keeps in the browser (localStorage) are the labeler's own: logging out clears them."""

import re

import pytest

from core.roles import ROLE_LABELER
from labeling.models import Batch
from labeling.services.tasks import prompt_task_create
from tests.factories import BatchFactory, UserFactory

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

DRAFT_KEYS_JS = """() => [localStorage, sessionStorage].flatMap(
    storage => Object.keys(storage)).filter(key => key.startsWith('loopwork-draft:'))"""


def draft_keys(page, *, wanted: bool) -> list[str]:
    """The draft keys in the page's storage, polled up to 5 s until there are some (wanted) or none."""
    for _ in range(50):
        keys = page.evaluate(DRAFT_KEYS_JS)
        if bool(keys) == wanted:
            break
        page.wait_for_timeout(100)
    return keys


def test_logging_out_clears_the_drafts_kept_in_the_browser(watched, transactional_db):
    page = watched.page
    labeler = UserFactory(username="ada", roles=[ROLE_LABELER])
    batch = BatchFactory(kind=Batch.Kind.PROMPT_WRITING, overlap=1, name="Write prompts")
    batch.labelers.add(labeler)
    prompt_task_create(batch=batch)
    log_in(page, "ada")
    page.locator(".batch-card", has_text="Write prompts").get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/assignments/\d+/$"))
    page.fill("#id_text", "A half-written prompt that must not outlive the session.")
    assert draft_keys(page, wanted=True)  # the page kept its copy

    page.click("form.logout button[type=submit]")
    page.wait_for_url(re.compile(r"/accounts/login/$"))
    assert draft_keys(page, wanted=False) == []
    assert not [e for e in watched.errors if e.startswith(("page error", "console"))]
