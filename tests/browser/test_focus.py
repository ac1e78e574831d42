"""Focus is always visible: tabbing through the pages used most (a ranking task, the batch list, a run's page),
every element that takes the focus shows an outline or a ring, and the first stop is the skip link, on screen."""

import re

import pytest

from tests.site_pages import build_site

from .conftest import log_in
from .test_accessibility import new_context

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MOST_TABS = 120  # more stops than any of these pages has: the walk ends when the focus comes round again
# The focused element, and whether it shows the focus: its own outline or ring, or, for a control drawn by its
# label (a segmented Likert scale hides its radio buttons), the label's.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const shows = (e) => {
    const s = getComputedStyle(e);
    return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none";
  };
  const box = el.getBoundingClientRect();
  const drawnByLabel = getComputedStyle(el).opacity === "0" || box.width <= 1 || box.height <= 1;
  const target = drawnByLabel && el.labels && el.labels.length ? el.labels[0] : el;
  const name = (el.id ? "#" + el.id : "") || el.getAttribute("name") || (el.textContent || "").trim().slice(0, 30);
  const where = target.getBoundingClientRect();
  return { key: el.tagName + " " + name + " " + Math.round(box.x) + "," + Math.round(box.y + scrollY),
           shown: shows(target), onScreen: where.right > 0 && where.bottom > 0 && where.left < innerWidth };
}"""


def tab_through(page) -> list[dict]:
    """Every stop of the Tab key from the top of the page, once each."""
    page.locator("body").focus()
    stops, seen = [], set()
    for _ in range(MOST_TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None:
            continue  # the focus left the document for the browser's own controls
        if focused["key"] in seen:
            break
        seen.add(focused["key"])
        stops.append(focused)
    return stops


def pick(urls: list[str], pattern: str) -> str:
    return next(url for url in urls if re.fullmatch(pattern, url))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_focus_stop_of_the_main_pages_is_visible(browser, live_server, scheme):
    site = build_site()
    pages = [
        ("ada", site["ada"][1]),  # the ranking task: the first of ada's assignments
        ("boss", pick(site["boss"], "/manage/batches/")),
        ("rex", pick(site["rex"], r"/training/runs/\d+/")),
    ]
    for username, url in pages:
        context, page = new_context(browser, live_server)
        page.emulate_media(color_scheme=scheme)
        log_in(page, username)
        page.goto(url, wait_until="networkidle")
        if username == "ada":
            page.wait_for_selector("#rk-tiers")  # the ranking page, its board drawn
        stops = tab_through(page)
        assert len(stops) >= 5, (url, stops)
        assert stops[0]["key"].startswith("A ") and "Skip to content" in stops[0]["key"], (url, stops[0])
        assert stops[0]["onScreen"], f"{url}: the skip link stays off screen when focused"
        unseen = [stop["key"] for stop in stops if not stop["shown"]]
        assert unseen == [], f"{url}: no visible focus on {unseen}"
        context.close()
