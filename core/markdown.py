"""Texts people wrote or models produced (prompts, outputs, demonstrations), shown as Markdown.

markdown-it-py (CommonMark, with tables) turns the text into HTML with raw HTML switched off, so markup in a
text is shown as text; fenced code with a language is highlighted by Pygments with CSS classes (the CSP
forbids inline styles; static/css/markdown.css holds the colours). nh3 then keeps only the tags and
attributes listed here, whatever the renderer or a plugin let through: no style, no event handlers, links
only to http, https and mailto, each with rel="nofollow noopener". Images are not rendered: they would
load from anywhere (and the CSP blocks other hosts).

A conversation (a prompt stored as chat messages) is a list of turns, each labelled by its role.
"""

from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

SCHEMES = ("http:", "https:", "mailto:")
ROLES = ("system", "user", "assistant")
TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li",
    "strong", "em", "code", "pre", "span", "a", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}, "span": {"class"}, "ol": {"start"}}
_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, language: str, _attrs: Any) -> str:
    """Pygments' spans for a fenced block that names a language it knows; "" lets markdown-it escape it."""
    try:
        lexer = get_lexer_by_name(language.strip()) if language.strip() else None
    except ClassNotFound:
        lexer = None
    return highlight(code, lexer, _FORMATTER) if lexer else ""


def _link_allowed(url: str) -> bool:
    return url.strip().lower().startswith(SCHEMES)


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "highlight": _highlight})
    md.enable("table").disable("image")
    md.validateLink = _link_allowed  # type: ignore[method-assign]  # markdown-it-py's documented hook
    return md


_MD = _renderer()


def render_markdown(text: str) -> SafeString:
    """`text` as sanitized HTML: Markdown rendered, then only the allow-listed tags, attributes and URLs."""
    html = _MD.render(text or "")
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes={s.rstrip(":") for s in SCHEMES},
        link_rel="nofollow noopener",
        strip_comments=True,
    )
    return mark_safe(clean)  # noqa: S308 - nh3 kept only the allow-list above


def conversation_turns(messages: Any) -> list[dict[str, str]] | None:
    """The turns of a conversation stored as chat messages ([{"role", "content"}, ...], TRL's conversational
    format), or None when `messages` is not one (then the prompt's text is shown alone)."""
    if not isinstance(messages, list) or not messages:
        return None
    turns = []
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return None
        if not isinstance(message.get("content"), str):
            return None
        turns.append({"role": message["role"], "content": message["content"]})
    return turns
