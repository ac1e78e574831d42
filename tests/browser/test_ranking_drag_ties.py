"""Drag and drop ties land in the tier they are dropped on, wherever on its row; a gap between tiers starts a
new tier. Before, a drop near a tier's edge went to the gap beside it (which reached out past its edge, and
grew as the card entered it, moving the tiers below from under the pointer): a tie became a tier of its own.
Then the card's placeholder still grew each list it entered, 50 ms behind the pointer, so a drop 3-8 px inside
a tier's top edge could still start a new tier: now nothing on the panel moves while a card is dragged, and the
zone under the pointer, marked as it moves, is where the card goes. Last, that zone was read after Sortable
had put the card back into the layout of the list it last entered (it looks every 50 ms, later under load):
tier 1 moved down under a drop on its row and the card tied with tier 0 (full-suite runs only); it is now read
at the release, before Sortable handles it."""

import pytest

from labeling.models import Batch
from tests.factories import ranking_task

from .conftest import log_in
from .test_workspace import assert_tiers, batch_for, drag, start

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def settled_box(page, target: str) -> dict:
    """The target's box once the layout holds still (two reads 60 ms apart agree): on a busy machine the gaps'
    120 ms opening can run late, and a hand aims at what it sees, not at a moving row."""
    box = page.locator(target).bounding_box()
    for _ in range(50):
        page.wait_for_timeout(60)
        again = page.locator(target).bounding_box()
        if again == box:
            return box
        box = again
    return box


def pick_up(page, letter: str) -> None:
    """Press on a card and move it a little: the drag begins, and the gaps open up."""
    card = page.locator(f'.rk-chip[data-letter="{letter}"]')
    card.scroll_into_view_if_needed()
    box = card.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(200)  # the last drop's animation (120 ms) ends first, as it does for a hand
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 8, box["y"] + box["height"] / 2 + 8, steps=4)
    page.wait_for_selector("body.rk-dragging")
    page.wait_for_timeout(150)  # the gaps open up in 120 ms (app.css): measure the page the labeler sees


def drop_at(page, letter: str, target: str, spot) -> dict:
    """Drag a card and release it at `spot(box)` of the target's box, measured as the labeler sees it: once
    the drag has begun (the gaps open up) and again near the target. Returns the target's box at the release."""
    pick_up(page, letter)
    x, y = spot(settled_box(page, target))
    page.mouse.move(x, y, steps=12)
    x, y = spot(settled_box(page, target))  # aim again, as a hand does
    page.mouse.move(x, y, steps=3)
    page.wait_for_timeout(60)  # Sortable looks at the pointer every 50 ms: let it, as a hand would
    at_release = page.locator(target).bounding_box()
    page.mouse.up()
    page.wait_for_selector("body:not(.rk-dragging)")
    return at_release


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


def test_a_drop_just_inside_a_tiers_top_edge_ties_and_no_row_moves_while_dragging(watched, labeler):
    page = watched.page
    ranking_task(batch=batch_for(labeler, Batch.Kind.RANKING, name="Rank"), k=4)
    log_in(page, "ada")
    start(page, "Rank")
    for key in ("c", "1", "a", "2", "b", "3"):  # C, then A, then B
        page.keyboard.press(key)
    tiers = [["C"], ["A"], ["B"]]
    assert_tiers(page, tiers)
    for nth in range(3):
        for offset in (3, 5, 8):
            aimed = {}

            def spot(box, offset=offset, aimed=aimed):
                aimed.setdefault("box", box)
                return box["x"] + box["width"] / 2, box["y"] + offset

            at_release = drop_at(page, "D", f".rk-tier >> nth={nth}", spot)
            assert at_release == aimed["box"], "a row moved while the card was dragged"
            expected = [sorted([*tier, "D"]) if i == nth else tier for i, tier in enumerate(tiers)]
            assert_tiers(page, expected)
            page.locator('.rk-chip[data-letter="D"]').focus()
            page.keyboard.press("0")  # back to the pool
            assert_tiers(page, tiers)
    assert not watched.dialogs and not watched.errors


def test_the_zone_under_the_pointer_is_marked_and_a_drop_on_the_pool_takes_a_card_out(watched, labeler):
    page = watched.page
    ranking_task(batch=batch_for(labeler, Batch.Kind.RANKING, name="Rank"), k=3)
    log_in(page, "ada")
    start(page, "Rank")
    for key in ("a", "1", "b", "2"):
        page.keyboard.press(key)
    pick_up(page, "B")
    goal = page.locator(".rk-tier >> nth=0").bounding_box()
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + goal["height"] / 2, steps=8)
    page.wait_for_selector(".rk-tier.rk-drop-target")
    assert page.locator(".rk-drop-target").count() == 1
    pool = page.locator("#rk-pool-box").bounding_box()
    page.mouse.move(pool["x"] + pool["width"] / 2, pool["y"] + pool["height"] / 2, steps=8)
    page.wait_for_selector("#rk-pool-box.rk-drop-target")
    page.mouse.up()
    page.wait_for_selector("body:not(.rk-dragging)")
    assert_tiers(page, [["A"]])
    assert page.locator('#rk-pool .rk-chip[data-letter="B"]').count() == 1
    assert page.locator(".rk-drop-target").count() == 0
    assert not watched.dialogs and not watched.errors


def test_a_drop_on_a_tier_below_the_list_the_card_last_passed_through_joins_that_tier(watched, labeler):
    """Sortable keeps the card's placeholder in the last list it entered (it looks every 50 ms, later on a busy
    machine) and puts it back into that list's layout before it reports the drop: the rows below move down.
    The zone is read at the release, before that: the tier under the pointer is the one the card joins."""
    page = watched.page
    ranking_task(batch=batch_for(labeler, Batch.Kind.RANKING, name="Rank"), k=4)
    log_in(page, "ada")
    start(page, "Rank")
    for key in ("c", "1", "a", "2", "b", "3"):
        page.keyboard.press(key)
    assert_tiers(page, [["C"], ["A"], ["B"]])
    pick_up(page, "D")
    first = settled_box(page, ".rk-tier >> nth=0 >> .rk-tier-cards")  # below its last card: Sortable appends
    page.mouse.move(first["x"] + first["width"] / 2, first["y"] + first["height"] - 3, steps=8)
    page.locator(".rk-tier >> nth=0 >> .rk-ghost").wait_for(state="attached")  # Sortable's placeholder
    # Then left onto tier 1's label and down the labels' column, where no list lies (the gaps start right of
    # it): the placeholder stays in tier 0 until the release, as it does when Sortable looks late.
    here = settled_box(page, ".rk-tier >> nth=0 >> .rk-tier-label")
    page.mouse.move(here["x"] + here["width"] / 2, first["y"] + first["height"] - 3, steps=4)
    label = settled_box(page, ".rk-tier >> nth=1 >> .rk-tier-label")
    page.mouse.move(label["x"] + label["width"] / 2, label["y"] + label["height"] / 2, steps=6)
    page.wait_for_timeout(120)
    assert page.locator(".rk-tier >> nth=0 >> .rk-ghost").count() == 1
    page.mouse.up()
    page.wait_for_selector("body:not(.rk-dragging)")
    assert_tiers(page, [["C"], ["A", "D"], ["B"]])
    assert not watched.dialogs and not watched.errors
