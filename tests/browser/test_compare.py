"""The compare view of the ranking page (templates/labeling/workspace/_compare.html): any two outputs side by
side, the words only one of them has marked, opened with X or its button; output text stays text."""

import pytest

from core.roles import ROLE_LABELER
from labeling.models import Batch, Completion
from labeling.services.tasks import ranking_task_create
from tests.factories import CompletionFactory, PromptFactory, UserFactory

from .conftest import log_in
from .test_workspace import batch_for, letters_to_ids, start
from .xss_corpus import CORPUS, PAYLOADS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "The quick red fox jumped over the lazy dog.",
    f"Hostile output:\n{CORPUS}",
    f"Hostile output, edited:\n{CORPUS.replace('alert', 'prompt')}",
]


@pytest.fixture
def ranking_page(transactional_db, watched):
    labeler = UserFactory(username="ada", roles=[ROLE_LABELER])
    prompt = PromptFactory(text="Say something about a fox.")
    ranking_task_create(
        batch=batch_for(labeler, Batch.Kind.RANKING, name="Compare"),
        prompt=prompt,
        completions=[CompletionFactory(prompt=prompt, text=t) for t in TEXTS],
    )
    log_in(watched.page, "ada")
    start(watched.page, "Compare")
    return watched


def letter_of(page) -> dict[str, str]:
    """Each text's letter: the page shows the outputs in this labeler's own order."""
    texts = dict(Completion.objects.values_list("pk", "text"))
    return {texts[cid]: letter for letter, cid in letters_to_ids(page).items()}


def marked(page, side: str, tag: str) -> list[str]:
    return [t.strip() for t in page.locator(f"#cmp-{side}-text {tag}").all_text_contents()]


def test_x_shows_two_outputs_side_by_side_with_their_own_words_marked(ranking_page):
    page = ranking_page.page
    dialog = page.locator("#cmp-dialog")
    assert dialog.is_hidden()
    page.keyboard.press("x")
    assert dialog.is_visible()
    assert page.locator("#cmp-left-title").inner_text() == "Output A"
    assert page.locator("#cmp-right-title").inner_text() == "Output B"
    letter = letter_of(page)
    text = {v: k for k, v in letter.items()}
    assert page.locator("#cmp-left-text").inner_text() == text["A"]
    assert page.locator("#cmp-right-text").inner_text() == text["B"]
    page.select_option("#cmp-left", letter[TEXTS[0]])
    page.select_option("#cmp-right", letter[TEXTS[1]])
    assert page.locator("#cmp-left-title").inner_text() == f"Output {letter[TEXTS[0]]}"
    assert marked(page, "left", "del") == ["brown", "jumps"]
    assert marked(page, "right", "ins") == ["red", "jumped"]
    assert page.locator("#cmp-summary").inner_text() == (
        f"2 words only in Output {letter[TEXTS[0]]}, 2 words only in Output {letter[TEXTS[1]]}."
    )

    page.keyboard.press("1")  # the page's keys do nothing behind the dialog
    page.keyboard.press("s")
    assert page.locator("#rk-tiers .rk-chip").count() == 0 and page.locator("#ws-skip-dialog").is_hidden()

    page.select_option("#cmp-right", letter[TEXTS[0]])  # the same output twice: said plainly, shown unmarked
    assert "on both sides" in page.locator("#cmp-summary").inner_text()
    assert page.locator("#cmp-dialog del, #cmp-dialog ins").count() == 2  # the legend's only
    page.select_option("#cmp-right", letter[TEXTS[1]])
    page.locator("#cmp-swap").focus()
    page.keyboard.press("Enter")  # swap sides
    assert page.locator("#cmp-left-title").inner_text() == f"Output {letter[TEXTS[1]]}"
    assert marked(page, "left", "del") == ["red", "jumped"]
    page.keyboard.press("Escape")
    assert dialog.is_hidden()

    page.keyboard.press("c")  # from output C's card, X compares C with the next one
    page.wait_for_function("() => document.activeElement?.closest?.('.rk-chip')?.dataset.letter === 'C'")
    page.keyboard.press("x")
    assert page.locator("#cmp-left-title").inner_text() == "Output C"
    assert page.locator("#cmp-right-title").inner_text() == "Output D"
    assert not ranking_page.dialogs and not ranking_page.errors


def test_the_button_opens_it_and_hostile_outputs_stay_text(ranking_page):
    page = ranking_page.page
    page.get_by_role("button", name="Compare two outputs").click()
    letter = letter_of(page)
    page.select_option("#cmp-left", letter[TEXTS[2]])
    page.select_option("#cmp-right", letter[TEXTS[3]])
    left, right = page.locator("#cmp-left-text"), page.locator("#cmp-right-text")
    assert left.inner_text() == TEXTS[2] and right.inner_text() == TEXTS[3]
    for payload in PAYLOADS:
        assert payload in left.inner_text()
    assert "alert" in " ".join(marked(page, "left", "del")) and "prompt" in " ".join(
        marked(page, "right", "ins")
    )
    live = "#cmp-dialog img, #cmp-dialog script, #cmp-dialog iframe, #cmp-dialog svg, #cmp-dialog a, #cmp-dialog [onerror]"
    assert page.locator(live).count() == 0
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__xss") is None
    page.locator("#cmp-close").click()
    assert page.locator("#cmp-dialog").is_hidden()
    assert not ranking_page.dialogs and not ranking_page.errors
