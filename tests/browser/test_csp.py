"""Every kind of page, opened as the role that uses it, in a real browser under the production
Content-Security-Policy (script-src and style-src 'self', nothing inline): the browser reports no
violation and no script error. Logging in goes through the login form with login throttling on."""

import re

import pytest

from tests.factories import UserFactory
from tests.site_pages import build_site

from .conftest import Watched, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

# Every violation the page sees, whoever caused it (an inline style, a blocked image, eval...).
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`));
"""
READY = [  # pages that draw after loading, and what shows they have finished
    (r"^/api/v1/docs/$", ".swagger-ui .info .title"),
    (r"^/training/runs/\d+/$", "#charts canvas"),  # Chart.js, from the run's metrics history
    (r"^/training/evaluations/", 'canvas[data-drawn="true"], .q-chart-empty'),
]


def visit(page, url: str) -> None:
    response = page.goto(url, wait_until="networkidle")
    assert response.status == 200, url
    for pattern, selector in READY:
        if re.match(pattern, url):
            page.wait_for_selector(selector)


def open_as(browser, live_server, username: str):
    """A fresh browser context signed in as `username`, its page watched for errors and violations."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=live_server.url)
    context.add_init_script(LISTEN)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    watched, csp_console = Watched(page), []
    page.on("console", lambda m: csp_console.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(page, username)
    return context, page, watched, csp_console


def test_every_page_runs_under_the_csp_without_violations(browser, live_server, settings):
    settings.AXES_ENABLED = True
    site = build_site()
    seen = []
    for username, urls in site.items():
        context, page, watched, csp_console = open_as(browser, live_server, username)
        for url in urls:
            visit(page, url)
            violations = page.evaluate("window.__csp")
            assert violations == [], (username, url, violations)
            assert csp_console == [], (username, url, csp_console)
            assert watched.errors == [], (username, url, watched.errors)
            seen.append(url)
        assert "script-src 'self'" in page.goto("/").headers["content-security-policy"]
        context.close()
    assert len(seen) == sum(len(urls) for urls in site.values())


def test_the_login_and_lockout_pages_run_under_the_csp(browser, live_server, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    UserFactory(username="ada")
    context = browser.new_context(base_url=live_server.url)
    context.add_init_script(LISTEN)
    page = context.new_page()
    csp_console = []
    page.on("console", lambda m: csp_console.append(m.text) if "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: csp_console.append(str(exc)))
    for _ in range(2):
        page.goto("/accounts/login/")
        page.fill("#id_username", "ada")
        page.fill("#id_password", "not-the-password")
        page.click("button[type=submit]")
        page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Too many failed logins"
    assert page.evaluate("window.__csp") == [] and csp_console == []
    context.close()
