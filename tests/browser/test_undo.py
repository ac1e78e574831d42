"""Undo in a real browser: submit a ranking, the next task page offers Undo with a countdown, U takes it
back to the very ranking as a draft, and submitting again holds the new answer. Without JavaScript the
notice is a plain form that reopens the task the same way (restoring a draft into the page is the page
script's work, with or without undo)."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.handout.next import assignment_next
from labeling.models import Assignment, Batch, Demonstration, Ranking
from labeling.services.tasks import prompt_task_create
from labeling.services.undo import submissions_finalise
from tests.factories import BatchFactory, PromptFactory, ranking_task

from .conftest import log_in
from .test_accessibility import AXE, STILL, WCAG, audit, new_context

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ASSIGNMENT = re.compile(r"/assignments/(\d+)/$")


@pytest.fixture(autouse=True)
def window(settings):
    settings.LABELING_UNDO_SECONDS = 30


def current_assignment(page) -> int:
    return int(ASSIGNMENT.search(page.url).group(1))


def next_task(url: str, first: int) -> bool:
    match = ASSIGNMENT.search(url)
    return bool(match) and int(match.group(1)) != first


def close_windows():
    Assignment.objects.filter(status="pending").update(undo_until=timezone.now() - timedelta(seconds=1))
    submissions_finalise()


def test_submit_undo_and_submit_again_a_ranking(watched, labeler):
    """The ranking is built from a server draft (the page restores it like any draft), so this test
    does not depend on how the page's ranking controls are worked."""
    page = watched.page
    batch = BatchFactory(name="Rank and undo", overlap=1)
    batch.labelers.add(labeler)
    task = ranking_task(batch=batch, k=2)
    ranking_task(batch=batch, k=2)
    a, b = task.task_completions.values_list("completion_id", flat=True)
    first = assignment_next(labeler=labeler, batch=batch).pk
    draft = {"tiers": [[b], [a]], "likert": {str(a): "2", str(b): "6"}, "flags": {}, "comment": ""}
    Assignment.objects.filter(pk=first).update(draft=draft | {"saved_at": int(time.time() * 1000)})
    log_in(page, "ada")
    page.goto(f"/assignments/{first}/")
    assert page.locator(f"#likert-{b}-6").is_checked()
    page.keyboard.press("Control+Enter")

    page.wait_for_url(lambda url: next_task(url, first))
    assert "Submitted." in page.locator("#undo-notice").inner_text()
    left = int(page.locator("#undo-seconds").inner_text())
    assert 0 < left <= 30
    # Polled from Python: page.wait_for_function evaluates with eval, which the page's CSP refuses.
    for _ in range(30):
        if int(page.locator("#undo-seconds").inner_text()) < left:
            break
        page.wait_for_timeout(100)
    assert int(page.locator("#undo-seconds").inner_text()) < left  # it counts down
    assert Assignment.objects.get(pk=first).status == "pending" and not Ranking.objects.exists()

    page.locator("body").press("u")  # the key; the button is in the tab order too
    page.wait_for_url(f"**/assignments/{first}/")
    assert page.locator(f"#likert-{b}-6").is_checked() and page.locator(f"#likert-{a}-2").is_checked()

    page.locator(f'label[for="likert-{a}-3"]').click()  # a change of mind, the rest as submitted
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: next_task(url, first))
    close_windows()

    ranking = Ranking.objects.get()
    assert ranking.assignment_id == first and ranking.tiers == [[b], [a]]  # the tiers came back too
    assert dict(ranking.ratings.values_list("completion_id", "likert")) == {a: 3, b: 6}
    assert not watched.dialogs
    assert not [e for e in watched.errors if "page error" in e or "undo" in e], watched.errors


def test_without_javascript_the_undo_form_still_works(browser, live_server, labeler):
    context = browser.new_context(java_script_enabled=False, base_url=live_server.url)
    page = context.new_page()
    batch = BatchFactory(name="Answer and undo", kind=Batch.Kind.DEMONSTRATION, overlap=1)
    batch.labelers.add(labeler)
    for text in ("Name a colour.", "Name a fruit."):
        prompt_task_create(batch=batch, prompt=PromptFactory(text=text))
    log_in(page, "ada")
    page.locator(".batch-card", has_text="Answer and undo").get_by_role("button", name="Start").click()
    page.wait_for_url(ASSIGNMENT)
    first = current_assignment(page)
    page.fill("textarea[name=text]", "Blue.")
    page.get_by_role("button", name="Submit demonstration").click()
    page.wait_for_url(lambda url: next_task(url, first))

    page.get_by_role("button", name="Undo").click()
    page.wait_for_url(f"**/assignments/{first}/")
    assert "Submission taken back" in page.inner_text(".messages")
    reopened = Assignment.objects.get(pk=first)
    assert reopened.status == "active" and reopened.draft["text"] == "Blue."  # the page script restores it

    page.fill("textarea[name=text]", "Green.")
    page.get_by_role("button", name="Submit demonstration").click()
    page.wait_for_url(lambda url: next_task(url, first))
    close_windows()
    assert list(Demonstration.objects.values_list("text", flat=True)) == ["Green."]
    context.close()


AXE_ON = """async ([selector, tags]) => {
  const results = await axe.run(selector, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
  return results.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}"""


def test_the_undo_notice_and_the_history_pass_the_wcag_audit(browser, live_server, labeler):
    """The notice (audited on its own: the task page around it is audited in test_accessibility.py) and
    the history page with an undo still open, in both colour schemes."""
    context, page = new_context(browser, live_server)
    batch = BatchFactory(name="Answer and audit", kind=Batch.Kind.DEMONSTRATION, overlap=1)
    batch.labelers.add(labeler)
    for text in ("Name a colour.", "Name a fruit."):
        prompt_task_create(batch=batch, prompt=PromptFactory(text=text))
    log_in(page, "ada")
    page.locator(".batch-card", has_text="Answer and audit").get_by_role("button", name="Start").click()
    page.wait_for_url(ASSIGNMENT)
    first = current_assignment(page)
    page.fill("textarea[name=text]", "Blue.")
    page.keyboard.press("Control+Enter")
    page.wait_for_url(lambda url: next_task(url, first))
    page.add_script_tag(path=AXE)
    page.add_style_tag(content=STILL)
    found = []
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        found += [
            f"notice [{scheme}] {v}"
            for v in page.evaluate(AXE_ON, ["#undo-notice", [*WCAG, "best-practice"]])
        ]
    page.goto("/submissions/")
    assert page.get_by_role("button", name=re.compile("^Undo")).count() == 1
    found += audit(page, "/submissions/")
    context.close()
    assert not found, "\n".join(found)
