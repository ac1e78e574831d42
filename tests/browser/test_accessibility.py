"""Every page, as every role and signed out, passes axe-core's WCAG 2.1 A and AA rules with zero violations,
in the light and the dark colour scheme (the pages follow the system setting). The product's own pages also
pass axe's best practices (landmarks, heading order, unique names, table headers); Django's admin and the
Swagger UI page are held to the WCAG rules only (their markup is theirs).

axe-core is vendored from npm (static/vendor/axe-core) and injected by the test, never by a page: the contexts
bypass the CSP only so that Playwright's injected script tag may run (the CSP itself is tested in test_csp.py).
Each page is loaded once and audited in both schemes, switched by media emulation."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from core.roles import ROLE_LABELER
from tests.factories import UserFactory
from tests.site_pages import build_site

from .conftest import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

AXE = Path(settings.BASE_DIR) / "static" / "vendor" / "axe-core" / "axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BORROWED = re.compile(r"^/(admin|api)/")  # Django's admin, Swagger UI: WCAG rules only
SCHEMES = ("light", "dark")
SHOWN = 3  # elements listed for each rule a page breaks
READY = [  # pages that draw after loading, and what shows they have finished
    (r"^/api/v1/docs/$", ".swagger-ui .info .title"),
    (r"^/training/runs/\d+/$", "#charts canvas"),
    (r"^/training/evaluations/", 'canvas[data-drawn="true"], .q-chart-empty'),
]
STILL = "*, *::before, *::after { transition: none !important; animation: none !important; }"
RUN_AXE = """async (tags) => {
  const results = await axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
  return results.violations.map((v) => ({
    id: v.id, help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary.replace(/\\s+/g, " ")}`),
  }));
}"""


def new_context(browser, live_server):
    context = browser.new_context(
        viewport={"width": 1360, "height": 900}, base_url=live_server.url, bypass_csp=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
    return context, page


def audit(page, where: str) -> list[str]:
    """The violations on the page as loaded, in each colour scheme, each line naming the page and scheme."""
    for pattern, selector in READY:
        if re.match(pattern, where):
            page.wait_for_selector(selector)
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(path=AXE)
        # Colours are measured once the scheme has switched, not halfway through a colour transition.
        page.add_style_tag(content=STILL)
    tags = WCAG if BORROWED.match(where) else [*WCAG, "best-practice"]
    found = []
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        for rule in page.evaluate(RUN_AXE, tags):
            shown = "\n    ".join(rule["nodes"][:SHOWN])
            more = f"\n    ... and {len(rule['nodes']) - SHOWN} more" if len(rule["nodes"]) > SHOWN else ""
            found.append(f"{where} [{scheme}] {rule['id']}: {rule['help']}\n    {shown}{more}")
    page.emulate_media(color_scheme="light")
    return found


def visit(page, url: str) -> list[str]:
    response = page.goto(url, wait_until="networkidle")
    assert response.status == 200, url
    return audit(page, url)


def test_every_page_of_every_role_passes_the_wcag_audit(browser, live_server):
    site = build_site()
    violations, seen = [], 0
    for username, urls in site.items():
        context, page = new_context(browser, live_server)
        log_in(page, username)
        for url in urls:
            violations += visit(page, url)
            seen += 1
        context.close()
    assert seen == sum(len(urls) for urls in site.values())
    assert not violations, "\n".join(violations)


def test_the_signed_out_and_error_pages_pass_the_wcag_audit(browser, live_server, settings):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 2
    UserFactory(username="ada", roles=[ROLE_LABELER])
    context, page = new_context(browser, live_server)
    violations = visit(page, "/accounts/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    page.wait_for_selector("p.error")
    violations += audit(page, "/accounts/login/ (refused)")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Too many failed logins")
    violations += audit(page, "/accounts/login/ (locked out)")
    context.close()

    context, page = new_context(browser, live_server)
    settings.AXES_ENABLED = False
    log_in(page, "ada")
    response = page.goto("/manage/batches/new/")
    assert response.status == 403
    violations += audit(page, "/manage/batches/new/ (403)")
    response = page.goto("/no-such-page/")
    assert response.status == 404
    violations += audit(page, "/no-such-page/ (404)")
    context.close()
    assert not violations, "\n".join(violations)
