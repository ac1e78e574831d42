"""The XSS corpus (tests/browser/xss_corpus.py), stored wherever users write text, comes back as text.

Two checks, on every page that shows the payloads, opened as the role that may see it:
- the HTML the server sends holds each markup payload escaped, never raw, and no javascript: URL in an
  attribute. This does not lean on the Content-Security-Policy (script-src 'self'), which would also
  block an inline payload: the markup must not be there at all;
- in the real browser no payload runs: no dialog, no script error, no console error (a CSP violation
  is one), and `window.__xss` stays unset after the page loads and after the page is used (details
  opened, outputs expanded, a card ranked with the keyboard, focus moved around, a refused form
  re-rendered with the payloads in it). The payloads must also be visible as text on the main pages,
  so the test cannot pass because nothing rendered."""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.utils.html import escape

from tests.browser.conftest import Watched, log_in
from tests.browser.xss_corpus import MARKUP, PAYLOADS, build_xss_world, pages, reflected, shown


class LiveParts(HTMLParser):
    """What a browser would act on in a page: event handler attributes, script-bearing URLs in
    attributes, and the text of the <script> elements it runs (json_script's data is not run)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.handlers: list[str] = []
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs) -> None:
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}={value!r}>")
            if SCRIPT_URL.match(value or ""):
                self.urls.append(f"<{tag} {name}={value!r}>")
        kind = dict(attrs).get("type") or "text/javascript"
        self._in_script = tag == "script" and kind in ("text/javascript", "module", "application/javascript")

    def handle_endtag(self, tag) -> None:
        self._in_script = False

    def handle_data(self, data) -> None:
        if self._in_script:
            self.scripts.append(data)


SCRIPT_URL = re.compile(r"\s*(javascript|vbscript|data\s*:\s*text/html)", re.I)


def visits(w: dict) -> dict[str, list[str]]:
    found = pages(w)
    for role, urls in reflected(w).items():
        found[role] = found.get(role, []) + urls
    return found


def check_html(html: str, where: str, expected: list[str]) -> None:
    raw = [p for p in MARKUP if p in html]
    assert not raw, f"{where} holds raw markup: {raw}"
    live = LiveParts()
    live.feed(html)
    assert not live.handlers, f"{where} has event handler attributes: {live.handlers}"
    assert not live.urls, f"{where} has script URLs in attributes: {live.urls}"
    ran = [s for s in live.scripts if "__xss" in s or "alert(" in s]
    assert not ran, f"{where} has payloads in script elements: {ran}"
    missing = [p for p in expected if escape(p) not in html]
    assert not missing, f"{where} does not show (escaped): {missing}"


@pytest.fixture
def world(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return build_xss_world()


@pytest.mark.django_db
def test_every_page_sends_the_payloads_escaped(world):
    users, expected = {"anonymous": None, **world["users"]}, shown(world)
    for role, urls in visits(world).items():
        client = Client()
        if users[role] is not None:
            client.force_login(users[role])
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (role, url, response.status_code)
            if response["Content-Type"].startswith("application/json"):
                assert response["X-Content-Type-Options"] == "nosniff", url
                continue
            assert response["Content-Type"].startswith("text/html"), (url, response["Content-Type"])
            check_html(response.content.decode(), f"{url} as {role}", expected.get((role, url), []))


@pytest.mark.django_db
def test_a_refused_prompt_comes_back_escaped_in_its_text_box(world):
    """A duplicate prompt is refused and the page shows the labeler's text again, in a <textarea>:
    '</textarea><script>' in it must not close the box."""
    client = Client()
    client.force_login(world["users"]["labeler"])
    url = f"/assignments/{world['live_writing'].pk}/"
    response = client.post(
        url,
        {"text": world["ranked_prompt"].text, "category": "open_qa", "source": "plain", "seconds_spent": 3},
        follow=True,  # a refusal redirects back to the task page, which shows the text sent and its error
    )
    assert response.redirect_chain == [(url, 303)]
    html = response.content.decode()
    assert "A similar prompt already exists" in html
    check_html(html, "the refused prompt page", PAYLOADS)
    detail = client.get(f"/prompts/{world['ranked_prompt'].pk}/").content.decode()
    check_html(detail, "the duplicated prompt's page", PAYLOADS)


# DRF's browsable API templates carry inline style attributes, which the CSP (style-src 'self')
# blocks and chromium logs as errors. Not a payload (those pages' HTML is checked for raw markup by
# the test above); every other CSP violation, scripts above all, still fails the test.
DRF_INLINE_STYLE = "Applying inline style violates the following Content Security Policy directive"


def not_run(page, watched: Watched, where: str) -> None:
    assert page.evaluate("() => window.__xss") is None, (
        f"payload {page.evaluate('() => window.__xss')} ran {where}"
    )
    assert not watched.dialogs, f"dialogs {where}: {watched.dialogs}"
    browsable = "format=api" in page.url
    errors = [e for e in watched.errors if not (browsable and DRF_INLINE_STYLE in e)]
    assert not errors, f"errors {where}: {errors}"
    watched.errors.clear()


def use(page) -> None:
    """What a user does on a page: open every details, expand long outputs, move the focus around."""
    page.evaluate(
        """() => {
        document.querySelectorAll("details").forEach((d) => { d.open = true; });
        document.querySelectorAll("button.rk-expand:not([hidden])").forEach((b) => b.click());
        document.querySelectorAll("a, button, input, textarea, select, [tabindex]").forEach((el) => {
          el.dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
        });
      }"""
    )
    for _ in range(10):
        page.keyboard.press("Tab")
    page.wait_for_timeout(150)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # the live server needs committed rows
def test_no_payload_runs_in_the_browser(browser, live_server, world):
    users, expected = {"anonymous": None, **world["users"]}, shown(world)
    ranking_page = f"/assignments/{world['live_ranking'].pk}/"
    writing_page = f"/assignments/{world['live_writing'].pk}/"
    for role, urls in visits(world).items():
        context = browser.new_context(viewport={"width": 1360, "height": 900}, base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.route("**/favicon.ico", lambda route: route.fulfill(status=204, body=""))
        watched = Watched(page)
        if users[role] is not None:
            log_in(page, users[role].username)
        for url in urls:
            page.goto(url)
            page.wait_for_load_state("load")
            where = f"on {url} as {role}"
            not_run(page, watched, where)
            # Prompts and outputs render as Markdown (asterisks, backslashes and backticks are markup there):
            # their exact text is under each "Show raw text" toggle, opened here as a user would.
            page.evaluate(
                "() => document.querySelectorAll('details.md-raw').forEach((d) => { d.open = true; })"
            )
            text = page.inner_text("body")
            missing = [p for p in expected.get((role, url), []) if p not in text]
            assert not missing, f"{where}: not shown as text: {missing}"
            if url == ranking_page:
                # The draft (json_script, '</script>' inside) is restored into the comment box.
                assert page.input_value("#id_comment").endswith(PAYLOADS[-1])
                page.focus(".rk-chip")
                page.keyboard.press("1")
                page.wait_for_selector("#rk-tiers .rk-chip")
            if url == writing_page:  # refused as a duplicate: the text comes back in the text box
                page.fill("#id_text", world["ranked_prompt"].text)
                page.select_option("#id_category", "open_qa")
                page.click("#ws-submit")
                page.wait_for_selector("#text-errors")
                assert page.input_value("#id_text") == world["ranked_prompt"].text.strip()
            use(page)
            not_run(page, watched, f"{where}, after using it")
        context.close()
