"""Playwright (sync API) driving Debian's chromium against pytest-django's live_server.

Never downloads a browser: CHROMIUM (default /usr/bin/chromium) must exist, or these tests skip.

Playwright is started per test, after the test database is set up, and stopped (its connections closed)
before it is torn down: while its event loop runs, Django's connections (asgiref locals) are other
objects than the ones pytest-django prepared.

The tests use a transactional database with serialized rollback: each starts from the migrated state
(the role groups included), whatever the transactional test before it flushed."""

import os
import re
from pathlib import Path

import pytest

# The sync API runs an event loop in this thread; the live server's ORM calls happen here too.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


@pytest.fixture
def browser(transactional_db, live_server):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
        from django.db import connections

        connections.close_all()  # the ones this test's ORM calls opened inside Playwright's loop


@pytest.fixture
def labeler(transactional_db):
    """The labeler "ada" (password PASSWORD), with nothing to do yet."""
    from core.roles import ROLE_LABELER
    from tests.factories import UserFactory

    return UserFactory(username="ada", roles=[ROLE_LABELER])


class Watched:
    """A page plus what it did that it should not: dialogs opened, script errors, failed requests."""

    def __init__(self, page):
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("console", self._console)
        page.on("response", self._response)

    def _console(self, message):
        # A refused form comes back as a 400 document, which chromium also logs: the responses are
        # checked below instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(f"console: {message.text}")

    def _response(self, response):
        if response.status >= 400 and response.request.resource_type != "document":
            self.errors.append(f"{response.status} for {response.url}")

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser, live_server):
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    # Favicon misses are not the page's fault.
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    yield Watched(page)
    context.close()


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    wait_for_home(page)


def wait_for_home(page) -> None:
    page.wait_for_url(HOME)


HOME = re.compile(r"^https?://[^/]+/$")
