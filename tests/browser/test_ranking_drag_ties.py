"""Drag and drop ties land in the tier they are dropped on, wherever on its row; a gap between tiers starts a
new tier. Before, a drop near a tier's edge went to the gap beside it (which reached out past its edge, and
grew as the card entered it, moving the tiers below from under the pointer): a tie became a tier of its own."""

import pytest

from core.roles import ROLE_LABELER
from labeling.models import Batch
from tests.factories import UserFactory, ranking_task

from .conftest import log_in
from .test_workspace import assert_tiers, batch_for, drag, start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def labeler(transactional_db):
    return UserFactory(username="ada", roles=[ROLE_LABELER])


def drop_at(page, letter: str, target: str, spot) -> None:
    """Drag a card and release it at `spot(box)` of the target's box, measured as the labeler sees it: once
    the drag has begun (the gaps open up) and again near the target (the rows move as the card leaves)."""
    card = page.locator(f'.rk-chip[data-letter="{letter}"]')
    card.scroll_into_view_if_needed()
    box = card.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(200)  # the last drop's animation (120 ms) ends first, as it does for a hand
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 8, box["y"] + box["height"] / 2 + 8, steps=4)
    page.wait_for_selector("body.rk-dragging")
    page.wait_for_timeout(150)  # the gaps open up in 120 ms (app.css): measure the page the labeler sees
    x, y = spot(page.locator(target).bounding_box())
    page.mouse.move(x, y, steps=12)
    x, y = spot(page.locator(target).bounding_box())  # the rows move as the card leaves its place: aim again
    page.mouse.move(x, y, steps=3)
    page.mouse.up()
    page.wait_for_selector("body:not(.rk-dragging)")


def test_a_card_dropped_anywhere_on_a_tier_ties_and_one_dropped_in_a_gap_starts_a_tier(watched, labeler):
    page = watched.page
    ranking_task(batch=batch_for(labeler, Batch.Kind.RANKING, name="Rank"), k=4)
    log_in(page, "ada")
    start(page, "Rank")
    for letter in "CAB":
        drag(page, page.locator(f'#rk-pool [data-letter="{letter}"]'), page.locator(".rk-new-tier"))
    assert_tiers(page, [["C"], ["A"], ["B"]])
    drop_at(page, "D", ".rk-tier >> nth=1", lambda b: (b["x"] + 3, b["y"] + b["height"] / 2))  # left edge
    assert_tiers(page, [["C"], ["A", "D"], ["B"]])
    drop_at(page, "D", ".rk-gap >> nth=1", lambda b: (b["x"] + b["width"] / 2, b["y"] + b["height"] / 2))
    assert_tiers(page, [["C"], ["D"], ["A"], ["B"]])
    assert not watched.dialogs and not watched.errors
