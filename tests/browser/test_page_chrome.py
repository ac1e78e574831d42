"""What every page has around its content: an icon (no request of any page fails, /favicon.ico included), a
403 page that says why, and no page wider than the window however long a value it shows."""

import pytest

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from tests.factories import UserFactory
from training.models import TrainingRun
from training.services.registry import base_model_get_or_create

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def page(browser, live_server):
    """A page without the shared fixture's stand-in for /favicon.ico: here the product answers it."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.failed = []
    page.on("response", lambda r: r.status >= 400 and page.failed.append(f"{r.status} {r.url}"))
    yield page
    context.close()


def test_no_page_logs_a_failed_request_and_the_icon_is_served(page):
    UserFactory(username="sci", roles=[ROLE_RESEARCHER, ROLE_LABELER])
    page.goto("/accounts/login/")
    log_in(page, "sci")
    for url in ("/", "/manage/", "/training/"):
        page.goto(url)
        page.wait_for_load_state("networkidle")
    assert page.failed == []
    icon = page.request.get("/favicon.ico")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")


def test_the_403_page_says_why(page):
    UserFactory(username="ada", roles=[ROLE_LABELER])
    log_in(page, "ada")
    response = page.goto("/manage/batches/new/")
    assert response.status == 403
    assert "Only batch admins can do this." in page.locator("#permission-denied").inner_text()
    assert page.locator("link[rel=stylesheet]").count() >= 1  # the product's page, not a bare one


def test_a_long_json_value_does_not_widen_the_run_page(page):
    UserFactory(username="sci", roles=[ROLE_RESEARCHER])
    long_value = "x" * 3000
    run = TrainingRun.objects.create(
        kind="sft",
        base_model=base_model_get_or_create(),
        config={"note": long_value, "path": "/data/" + "segment/" * 300},
        error="Traceback: " + "y" * 3000,
        metrics={"loss": 0.5, "rewards": [0.123456] * 300},
    )
    log_in(page, "sci")
    page.goto(f"/training/runs/{run.pk}/")
    page.wait_for_selector("#latest-metrics td")  # drawn by the page's script from the run's status
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    # On a phone the content still fits (the top bar's width is the navigation's own matter).
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.querySelector('main').scrollWidth") <= 390
    assert long_value in page.locator("main").inner_text()  # wrapped, not cut


@pytest.mark.parametrize("width", [390, 320])
def test_on_a_phone_no_page_is_wider_than_the_window_top_bar_included(page, width):
    """Every role's widest navigation (all roles and staff) wraps inside the window; before, the log-out
    form kept the top bar 420 px wide at 390."""
    UserFactory(username="all", roles=[ROLE_LABELER, ROLE_BATCH_ADMIN, ROLE_RESEARCHER], is_staff=True)
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, "all")
    for url in ("/", "/manage/batches/", "/explore/rankings/", "/training/", "/submissions/"):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth") <= width, url
        logout = page.locator(".topbar .logout button").bounding_box()
        assert logout["x"] + logout["width"] <= width, url  # reachable without scrolling sideways
