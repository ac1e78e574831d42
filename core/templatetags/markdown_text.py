"""Template tags for texts shown as Markdown: `{{ text|markdown }}`, `{% markdown_text text %}` (the rendered
block, as turns labelled by role when given a conversation, with its "Show raw text" toggle) and
`{% raw_text text %}` (the toggle alone, for a page that puts it after its own controls)."""

from typing import Any

from django import template
from django.utils.safestring import SafeString

from core.markdown import conversation_turns, render_markdown

register = template.Library()


@register.filter(name="markdown")
def markdown(text: str) -> SafeString:
    return render_markdown(text)


@register.inclusion_tag("markdown/_text.html")
def markdown_text(
    text: str, *, id: str = "", key: Any = "", classes: str = "", conversation: Any = None, raw: bool = True
) -> dict[str, Any]:
    """`id` names the block (with `key` appended: "text" and 12 give "text-12"); `conversation` is the chat
    messages the text was stored as, if any."""
    return {
        "text": text,
        "id": f"{id}-{key}" if key != "" else id,
        "classes": classes,
        "turns": conversation_turns(conversation),
        "raw": raw,
    }


@register.inclusion_tag("markdown/_raw.html")
def raw_text(text: str, *, turns: Any = None) -> dict[str, Any]:
    return {"text": text, "turns": turns}
