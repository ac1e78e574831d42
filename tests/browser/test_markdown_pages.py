"""Outputs read as Markdown on the ranking page: code highlighted in a monospace block, and the exact text one
click away under "Show raw text"; the CSP (no inline style) holds, since the highlighting is classes."""

import re

import pytest

from core.roles import ROLE_LABELER
from labeling.models import Batch
from labeling.services.tasks import ranking_task_create
from tests.factories import BatchFactory, CompletionFactory, PromptFactory, UserFactory

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

OUTPUT = "Use **sorted**:\n\n```python\ndef top(xs):\n    return sorted(xs)[:3]\n```\n\n| n | ok |\n|---|---|\n| 1 | <b>yes</b> |"


def test_the_ranking_page_renders_outputs_as_markdown_and_shows_the_raw_text(watched):
    page = watched.page
    labeler = UserFactory(username="ada", roles=[ROLE_LABELER])
    batch = BatchFactory(kind=Batch.Kind.RANKING, overlap=1, name="Markdown outputs")
    batch.labelers.add(labeler)
    prompt = PromptFactory(text="Write `top(xs)` in *Python*.")
    outputs = [CompletionFactory(prompt=prompt, text=OUTPUT), CompletionFactory(prompt=prompt, text="plain")]
    ranking_task_create(batch=batch, prompt=prompt, completions=outputs)
    log_in(page, "ada")
    page.goto("/")
    page.locator(".batch-card", has_text="Markdown outputs").get_by_role("button", name="Start").click()
    page.wait_for_url(re.compile(r"/assignments/\d+/$"))

    assert page.locator("#prompt-text code").inner_text() == "top(xs)"
    card = page.locator(f"#output-{outputs[0].pk}")
    rendered = card.locator(f"#text-{outputs[0].pk}")
    assert rendered.locator("strong").inner_text() == "sorted"
    keyword = rendered.locator("pre code.language-python span.k").first
    assert keyword.inner_text() == "def"
    assert keyword.evaluate("el => getComputedStyle(el).fontWeight") == "700"  # the stylesheet, not a style=
    assert "monospace" in rendered.locator("pre").evaluate("el => getComputedStyle(el).fontFamily")
    assert rendered.locator("td").last.inner_text() == "<b>yes</b>"  # raw HTML stays text
    assert rendered.locator("b").count() == 0

    raw = card.locator("details.md-raw")
    assert not raw.locator("pre").is_visible()
    raw.locator("summary", has_text="Show raw text").click()
    assert raw.locator("pre").inner_text() == OUTPUT
    assert "monospace" in raw.locator("pre").evaluate("el => getComputedStyle(el).fontFamily")
    assert not watched.dialogs and not watched.errors
