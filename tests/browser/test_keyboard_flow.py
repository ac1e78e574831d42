"""The fast keyboard flow of the ranking page (docs/keyboard.md): "/", the outputs best first ("=" ties), a score
for each in the same order, Enter to rank, Enter again to submit. Key presses are counted from the loaded page to
the stored ranking, with no mouse; the keys pressed are the ones the page's key guide shows."""

import re

import pytest

from labeling.models import Batch, Ranking
from tests.factories import ranking_task

from .conftest import log_in
from .test_workspace import assert_tiers, batch_for, letters_to_ids, start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def stored_at_once(settings):
    """No undo window: the ranking is written when submitted (the window has its own tests)."""
    settings.LABELING_UNDO_SECONDS = 0


class Keyboard:
    """page.keyboard.press, counted."""

    def __init__(self, page):
        self.page = page
        self.presses = 0

    def press(self, *keys: str) -> None:
        for key in keys:
            self.page.keyboard.press(key)
            self.presses += 1


def open_ranking(page, labeler, k: int) -> dict[str, int]:
    ranking_task(batch=batch_for(labeler, Batch.Kind.RANKING, name="Rank fast"), k=k)
    log_in(page, "ada")
    start(page, "Rank fast")
    page.wait_for_load_state("load")
    return letters_to_ids(page)


def submitted(page, first_url: str) -> Ranking:
    page.wait_for_url(lambda url: url != first_url)
    assert page.locator(".messages li", has_text="Ranking saved.").count() == 1
    return Ranking.objects.get()


def stored(ranking: Ranking, ids: dict[str, int]) -> tuple[list[list[str]], dict[str, int]]:
    """The ranking as letters: tiers (sorted within a tier) and the score of each output."""
    letter = {cid: name for name, cid in ids.items()}
    tiers = [sorted(letter[cid] for cid in tier) for tier in ranking.tiers]
    scores = {letter[cid]: likert for cid, likert in ranking.ratings.values_list("completion_id", "likert")}
    return tiers, scores


def test_a_k4_ranking_with_a_tie_and_every_score_takes_12_key_presses_as_the_page_shows(watched, labeler):
    page = watched.page
    ids = open_ranking(page, labeler, k=4)
    first_url = page.url
    shown = page.locator("#rk-keys-fast kbd").all_inner_texts()
    assert shown == ["/", "b", "a", "=", "d", "c", "7", "5", "3", "1", "Enter", "Enter"]
    assert "12 keys" in page.locator("#rk-keys-fast").inner_text()

    keyboard = Keyboard(page)
    keyboard.press(*shown[:-1])  # "/" to the field, the ranking, the scores, Enter ranks
    assert_tiers(page, [["B"], ["A", "D"], ["C"]])
    assert (
        page.locator("#rk-announce").inner_text().startswith("Ranked B, then A = D, then C; scores B 7, A 5")
    )
    assert page.evaluate("document.activeElement.id") == "ws-submit"
    assert page.locator(f"#likert-{ids['C']}-1").is_checked()
    keyboard.press(shown[-1])  # Enter again submits
    ranking = submitted(page, first_url)

    assert keyboard.presses == 12
    assert stored(ranking, ids) == ([["B"], ["A", "D"], ["C"]], {"B": 7, "A": 5, "D": 3, "C": 1})
    assert not watched.dialogs and not watched.errors


def test_two_outputs_take_seven_key_presses(watched, labeler):
    page = watched.page
    ids = open_ranking(page, labeler, k=2)
    first_url = page.url
    keyboard = Keyboard(page)
    keyboard.press("/", "B", "a", "2", "6", "Enter", "Enter")  # capitals work as well
    ranking = submitted(page, first_url)
    assert keyboard.presses == 7
    assert stored(ranking, ids) == ([["B"], ["A"]], {"B": 2, "A": 6})
    assert not watched.dialogs and not watched.errors


def test_nine_outputs_with_ties_typed_in_one_go(watched, labeler):
    page = watched.page
    ids = open_ranking(page, labeler, k=9)
    first_url = page.url
    keyboard = Keyboard(page)
    keyboard.press("/", *"i=h g f=e=d c b a", *"776544321", "Enter", "Enter")
    ranking = submitted(page, first_url)
    assert stored(ranking, ids) == (
        [["H", "I"], ["G"], ["D", "E", "F"], ["C"], ["B"], ["A"]],
        {"I": 7, "H": 7, "G": 6, "F": 5, "E": 4, "D": 4, "C": 3, "B": 2, "A": 1},
    )
    assert not watched.dialogs and not watched.errors


def test_a_wrong_entry_says_what_is_wrong_and_changes_nothing(watched, labeler):
    page = watched.page
    ids = open_ranking(page, labeler, k=4)
    first_url = page.url
    field = page.locator("#rk-quick-input")
    error = page.locator("#rk-quick-error")
    for typed, message in (
        ("aba", "A is typed twice: each output goes in the ranking once."),
        ("ae", "There is no output E here: the outputs are A to D."),
        ("ab98", "Scores run from 1 to 7: the first score is 9."),
        ("ab777", "3 scores for 2 outputs: one score per output, in the order typed."),
        ("ab7c", '"C" after a score: type the whole ranking first, then the scores.'),
        ("=ab", '"=" ties an output with the one before it: type an output first.'),
        ("ab=", '"=" needs an output after it.'),
    ):
        page.keyboard.press("/")
        page.keyboard.press("Control+A")
        page.keyboard.type(typed)
        page.keyboard.press("Enter")
        assert error.inner_text() == message, typed
        assert field.get_attribute("aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "rk-quick-input"  # to correct it
        page.keyboard.press("Escape")
    assert page.url == first_url
    assert page.locator("#rk-pool .rk-chip").count() == 4  # nothing placed
    assert page.locator(".rk-likert input:checked").count() == 0  # nothing scored

    # A part of the ranking is applied, and what is left to do is listed; Enter does not submit it.
    page.keyboard.press("/")
    page.keyboard.press("Control+A")
    page.keyboard.type("c=a 55")
    assert page.locator("#rk-quick-preview").inner_text() == "Enter will rank: C = A; scores C 5, A 5"
    page.keyboard.press("Enter")
    assert_tiers(page, [["A", "C"]])
    assert error.is_hidden() and field.get_attribute("aria-invalid") == "false"
    problems = page.locator("#rk-errors").inner_text()
    assert "B, D not placed yet" in problems and "Give a quality score (1–7) to B, D." in problems
    assert page.evaluate("document.activeElement.id") == "rk-quick-input"
    page.keyboard.press("Enter")  # an empty field: says what to type, sends nothing
    assert "Type the outputs best first" in error.inner_text()
    assert page.url == first_url and not Ranking.objects.exists()
    assert page.locator(f"#likert-{ids['A']}-5").is_checked()
    assert not watched.dialogs and not watched.errors


def test_the_old_keys_still_work_beside_the_typed_ranking(watched, labeler):
    page = watched.page
    ids = open_ranking(page, labeler, k=3)
    first_url = page.url
    page.keyboard.press("/")
    page.keyboard.type("abc")
    page.keyboard.press("Enter")  # ranked, not scored: the focus stays in the field
    page.keyboard.press("Escape")
    for key in ("c", "1", "Shift+A", "4", "Shift+B", "3", "Shift+C", "6"):  # C tied with A, scores one by one
        page.keyboard.press(key)
    assert_tiers(page, [["A", "C"], ["B"]])
    page.keyboard.press("Enter")
    ranking = submitted(page, first_url)
    assert stored(ranking, ids) == ([["A", "C"], ["B"]], {"A": 4, "B": 3, "C": 6})
    assert re.search(r"/assignments/\d+/$", first_url)
    assert not watched.dialogs and not watched.errors
