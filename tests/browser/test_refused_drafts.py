"""Work in progress survives a submission the server refuses, then typing, a reload and Back: the refusal
answers with a redirect (nothing to re-post), and the page starts from the newest draft. Also: the ranking
page's list of what is missing shrinks as the labeler fixes it."""

import re

import pytest
from playwright.sync_api import expect

from labeling.models import Assignment, Batch
from labeling.services.tasks import prompt_task_create
from tests.factories import BatchFactory, PromptFactory, ranking_task

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TASK_PAGE = re.compile(r"/assignments/\d+/$")


def open_task(page, labeler, kind) -> None:
    batch = BatchFactory(kind=kind, overlap=1, name="The batch")
    batch.labelers.add(labeler)
    if kind == Batch.Kind.RANKING:
        ranking_task(batch=batch, k=2)
    else:
        prompt_task_create(batch=batch, prompt=PromptFactory(text="Name three colours."))
    log_in(page, "ada")
    page.locator(".batch-card", has_text="The batch").get_by_role("button", name="Start").click()
    page.wait_for_url(TASK_PAGE)


def type_and_wait_for_the_save(page, selector: str, text: str) -> None:
    with page.expect_response(lambda r: r.url.endswith("/draft/") and r.ok):
        page.fill(selector, text)


def reload_then_back(page, selector: str, text: str) -> None:
    page.reload()
    expect(page.locator(selector)).to_have_value(text)  # polled: the page's script restores the draft
    page.go_back()
    page.wait_for_url(TASK_PAGE)
    expect(page.locator(selector)).to_have_value(text)


def test_a_demonstration_typed_after_a_refusal_survives_reload_and_back(watched, labeler):
    page = watched.page
    open_task(page, labeler, Batch.Kind.DEMONSTRATION)
    page.click("#ws-submit")  # empty: refused by the server
    page.wait_for_url(TASK_PAGE)
    assert "required" in page.locator("#ws-form .ws-errors").inner_text()
    type_and_wait_for_the_save(page, "#id_text", "Red, yellow and blue.")
    reload_then_back(page, "#id_text", "Red, yellow and blue.")
    assert Assignment.objects.get(labeler=labeler).draft["text"] == "Red, yellow and blue."
    assert not watched.dialogs and not watched.errors


def test_a_ranking_comment_typed_after_a_refusal_survives_reload_and_back(watched, labeler):
    page = watched.page
    open_task(page, labeler, Batch.Kind.RANKING)
    page.fill("#id_comment", "first thoughts")
    page.evaluate("document.getElementById('ws-form').submit()")  # past the page's checks: nothing ranked
    page.wait_for_url(TASK_PAGE)
    page.wait_for_selector("#rk-server-errors")
    expect(page.locator("#id_comment")).to_have_value("first thoughts")  # what was sent is kept
    type_and_wait_for_the_save(page, "#id_comment", "first thoughts, then more")
    reload_then_back(page, "#id_comment", "first thoughts, then more")
    assert Assignment.objects.get(labeler=labeler).draft["comment"] == "first thoughts, then more"
    assert not watched.dialogs and not watched.errors


def test_the_missing_scores_list_shrinks_as_scores_are_given(watched, labeler):
    page = watched.page
    open_task(page, labeler, Batch.Kind.RANKING)
    for letter in "AB":
        page.locator(f'#rk-pool [data-letter="{letter}"]').focus()
        page.keyboard.press("1" if letter == "A" else "2")
    page.click("#ws-submit")
    errors = page.locator("#rk-errors")
    assert "Give a quality score (1–7) to A, B." in errors.inner_text()
    ids = [int(page.locator(".rk-output").nth(i).get_attribute("data-id")) for i in range(2)]
    page.locator(f'label[for="likert-{ids[0]}-5"]').click()
    assert "to B." in errors.inner_text()
    page.locator(f'label[for="likert-{ids[1]}-6"]').click()
    assert errors.is_hidden()
    assert not watched.dialogs and not watched.errors
