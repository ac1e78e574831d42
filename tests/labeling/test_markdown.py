"""Prompts, outputs and demonstrations are shown as Markdown: rendered, highlighted, and sanitized by an
allow-list, so no text (the XSS corpus above all) brings a script, an event handler or a dangerous URL."""

import re
from html.parser import HTMLParser

import pytest
from django.test import Client

from core.markdown import conversation_turns, render_markdown
from core.roles import ROLE_RESEARCHER
from tests.browser.xss_corpus import CORPUS, PAYLOADS
from tests.factories import PromptFactory, UserFactory

ALLOWED = set(
    "p br hr h1 h2 h3 h4 h5 h6 blockquote ul ol li strong em code pre span a table thead tbody tr th td".split()
)
SAFE_URL = ("http://", "https://", "mailto:")


class Elements(HTMLParser):
    """Every element of some HTML as the browser's parser would find it: (tag, {attribute: value})."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def test_a_fenced_block_with_a_language_is_highlighted_with_classes():
    html = render_markdown("Try:\n\n```python\ndef f(x):\n    return x\n```\n")
    assert '<pre><code class="language-python">' in html
    assert '<span class="k">def</span>' in html and 'class="nf">f</span>' in html
    assert "style=" not in html


def test_a_fenced_block_without_a_known_language_is_escaped_text():
    html = render_markdown("```nosuchlanguage\n<b>x</b>\n```")
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>" not in html


def test_tables_emphasis_and_inline_code_render():
    html = render_markdown("| a | b |\n|:--|--:|\n| 1 | `2` |\n\nsome *word* and **bold**")
    assert "<table>" in html and "<th>a</th>" in html and "<td><code>2</code></td>" in html
    assert "<em>word</em>" in html and "<strong>bold</strong>" in html
    assert "style=" not in html  # the alignment would be an inline style, which the CSP forbids


def test_raw_html_in_the_text_is_shown_as_text():
    html = render_markdown('Say <b>hi</b> <img src=x onerror="alert(1)">')
    assert "&lt;b&gt;hi&lt;/b&gt;" in html and "<img" not in html and "<b>" not in html


def test_links_keep_only_safe_schemes_and_get_nofollow():
    html = render_markdown(
        "[a](javascript:alert(1)) [b](data:text/html,x) [c](https://example.com) [d](mailto:x@y.z)"
    )
    assert "javascript:" not in html.replace("[a](javascript:alert(1))", "")
    assert 'href="data:' not in html and 'href="javascript:' not in html
    assert '<a href="https://example.com" rel="nofollow noopener">c</a>' in html
    assert 'href="mailto:x@y.z"' in html


def test_images_are_not_loaded():
    assert "<img" not in render_markdown("![pixel](https://tracker.example/p.png)")


def test_single_newlines_are_kept_as_line_breaks():
    assert render_markdown("one\ntwo") == "<p>one<br>\ntwo</p>\n"


@pytest.mark.parametrize(
    "text", [*PAYLOADS, CORPUS, f"```html\n{CORPUS}\n```", f"> {CORPUS}", f"| x |\n|---|\n| {CORPUS} |"]
)
def test_no_xss_payload_leaves_a_tag_a_handler_or_a_url_after_rendering(text):
    for tag, attrs in Elements(str(render_markdown(text))).found:
        assert tag in ALLOWED, tag
        assert set(attrs) <= {"href", "title", "class", "rel", "start"}, attrs
        assert attrs.get("href", "https://").startswith(SAFE_URL), attrs


def test_a_conversation_is_turns_and_anything_else_is_not():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi *there*"}]
    assert conversation_turns(messages) == messages
    for bad in (None, "", [], [{"role": "robot", "content": "x"}], [{"role": "user", "content": 3}], ["x"]):
        assert conversation_turns(bad) is None


@pytest.mark.django_db
def test_the_prompt_page_shows_markdown_turns_by_role_and_the_raw_text():
    messages = [
        {"role": "system", "content": "You answer in **one** line."},
        {"role": "user", "content": "What is `2+2`?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And <b>3+3</b>?"},
    ]
    prompt = PromptFactory(text="What is `2+2`? And <b>3+3</b>?", metadata={"messages": messages})
    client = Client()
    client.force_login(UserFactory(roles=[ROLE_RESEARCHER]))
    html = client.get(f"/prompts/{prompt.pk}/").content.decode()
    roles = re.findall(r'<section class="md-turn md-turn-(\w+)"><p class="md-role">(\w+)</p>', html)
    assert roles == [("system", "System"), ("user", "User"), ("assistant", "Assistant"), ("user", "User")]
    assert "<strong>one</strong>" in html and "<code>2+2</code>" in html
    assert "And &lt;b&gt;3+3&lt;/b&gt;?" in html and "<b>3+3" not in html
    assert html.count('<pre class="md-raw-text">') == 4 and "Show raw text" in html


@pytest.mark.django_db
def test_a_plain_prompt_renders_as_one_markdown_block_with_its_raw_text():
    prompt = PromptFactory(text="List:\n\n- *one*\n- two")
    client = Client()
    client.force_login(UserFactory(roles=[ROLE_RESEARCHER]))
    html = client.get(f"/prompts/{prompt.pk}/").content.decode()
    assert '<div class="md ws-text" id="prompt-text"><p>List:</p>\n<ul>\n<li><em>one</em></li>' in html
    assert '<pre class="md-raw-text">List:\n\n- *one*\n- two</pre>' in html
