"""One row checked against its format, and the shapes people publish rebuilt into ours.

    {"messages"}                     sft: the last assistant message is the completion, those before the prompt
    {"chosen", "rejected"}           rm_pairs: their shared start is the prompt (Anthropic HH-RLHF)
    string prompt, chat chosen/...   rm_pairs: the prompt comes out of the conversations (UltraFeedback)
A text field other than "text" is a string or a conversation (a list of {"role", "content"} messages); within
a row all are strings or all are conversations afterwards.
"""

from __future__ import annotations

import os
from typing import Any

from training.ml.render import as_messages

ROLES = ("system", "user", "assistant", "tool")
ANSWERS = {"sft": ("completion",), "rm_pairs": ("chosen", "rejected"), "rm_rankings": (), "prompts": ()}
_ASSISTANT_TAG = "\n\nAssistant:"
_ABSENT = object()


class RowError(Exception):
    """What is wrong with one row; load_rows adds where the row is."""


def normalize_row(row: dict[str, Any], fmt: str) -> dict[str, Any]:
    """`row` checked against `fmt`; public shapes are rebuilt into it, our own rows pass through."""
    if fmt == "text":
        if not isinstance(row.get("text"), str):
            raise RowError(f"field 'text' must be a string, got {_type_name(row.get('text', _ABSENT))}")
        return row
    if fmt == "sft" and "completion" not in row and "messages" in row:
        row = _sft_from_messages(row)
    elif fmt == "rm_pairs" and _prompt_is_implicit(row):
        row = _with_extracted_prompt(row)
    if fmt == "rm_rankings":
        answers = _ranking_completions(row)
    else:
        answers = [row.get(name, _ABSENT) for name in ANSWERS[fmt]]
    if type(row.get("prompt")) is str and all(type(answer) is str for answer in answers):
        return row  # all strings, as in our own exports: nothing more to check, and this path must stay fast
    kinds = {_kind("prompt", row.get("prompt", _ABSENT))}
    names = [f"completions[{i}]" for i in range(len(answers))] if fmt == "rm_rankings" else ANSWERS[fmt]
    kinds.update(_kind(name, answer) for name, answer in zip(names, answers, strict=True))
    if len(kinds) > 1:
        _make_all_conversations(row, fmt)
    return row


def _kind(field: str, value: Any) -> str:
    """'string' or 'chat' (a valid message list); anything else raises, naming the field."""
    if isinstance(value, str):
        return "string"
    if not isinstance(value, list):
        raise RowError(
            f"field {field!r} must be a string, got {_type_name(value)} (or a list of role/content messages)"
        )
    if not value:
        raise RowError(f"field {field!r} is an empty list of messages")
    for number, message in enumerate(value):
        if not isinstance(message, dict):
            raise RowError(
                f"field {field!r}: message {number} must be an object, got {type(message).__name__}"
            )
        if message.get("role") not in ROLES:
            raise RowError(
                f"field {field!r}: message {number} has role {message.get('role')!r}; use {', '.join(ROLES)}"
            )
        if not isinstance(message.get("content"), str):
            raise RowError(f"field {field!r}: message {number} has no 'content' string")
    return "chat"


def _type_name(value: Any) -> str:
    return "nothing" if value is _ABSENT else type(value).__name__


def _ranking_completions(row: dict[str, Any]) -> list[Any]:
    """A ranking's completions, once their number and ranks are checked."""
    completions, ranks = row.get("completions"), row.get("ranks")
    if not isinstance(completions, list) or len(completions) < 2:
        raise RowError("field 'completions' must be a list of at least 2 completions")
    if not isinstance(ranks, list) or len(ranks) != len(completions):
        raise RowError(f"field 'ranks' must be a list as long as 'completions' ({len(completions)})")
    if not all(type(rank) is int and rank >= 0 for rank in ranks):
        raise RowError(f"field 'ranks' must hold integers >= 0 (0 is the best), got {ranks}")
    return completions


def _make_all_conversations(row: dict[str, Any], fmt: str) -> None:
    """A row mixing strings and conversations: a string prompt becomes a user turn, a string answer an
    assistant turn, so a chat template sees one conversation."""
    row["prompt"] = as_messages(row["prompt"], "user")
    for name in ANSWERS[fmt]:
        row[name] = as_messages(row[name], "assistant")
    if fmt == "rm_rankings":
        row["completions"] = [as_messages(completion, "assistant") for completion in row["completions"]]


def _sft_from_messages(row: dict[str, Any]) -> dict[str, Any]:
    """{"messages"} (ultrachat, UltraFeedback *_sft): learn the last assistant message from what precedes it."""
    messages = row["messages"]
    if not isinstance(messages, list):
        raise RowError(f"field 'messages' must be a list of messages, got {type(messages).__name__}")
    _kind("messages", messages)
    last = next((i for i in reversed(range(len(messages))) if messages[i]["role"] == "assistant"), None)
    if last is None:
        raise RowError("field 'messages' has no assistant message, so there is no completion to learn")
    if last == 0:
        raise RowError("field 'messages' has no message before its assistant message, so there is no prompt")
    shaped = {key: value for key, value in row.items() if key != "messages"}
    shaped.update(prompt=messages[:last], completion=[messages[last]])
    return shaped


def _prompt_is_implicit(row: dict[str, Any]) -> bool:
    """No prompt (HH-RLHF), or, as TRL's maybe_extract_prompt reads it, a string prompt beside conversations
    that hold it (UltraFeedback). Conversations that start with the assistant do not hold it."""
    if "prompt" not in row:
        return True
    chosen = row.get("chosen")
    if not isinstance(row["prompt"], str) or not isinstance(chosen, list) or not chosen:
        return False
    return isinstance(chosen[0], dict) and chosen[0].get("role") != "assistant"


def _with_extracted_prompt(row: dict[str, Any]) -> dict[str, Any]:
    chosen, rejected = row.get("chosen", _ABSENT), row.get("rejected", _ABSENT)
    if _kind("chosen", chosen) != _kind("rejected", rejected):
        raise RowError("fields 'chosen' and 'rejected' must both be strings or both message lists")
    cut = _shared_transcript(chosen, rejected) if isinstance(chosen, str) else _shared_turns(chosen, rejected)
    if cut == 0:
        raise RowError("fields 'chosen' and 'rejected' start differently, so they hold no shared prompt")
    return {**row, "prompt": chosen[:cut], "chosen": chosen[cut:], "rejected": rejected[cut:]}


def _shared_transcript(chosen: str, rejected: str) -> int:
    """How many leading characters of two transcripts are their prompt."""
    shared = os.path.commonprefix([chosen, rejected])
    tag = shared.rfind(_ASSISTANT_TAG)
    if tag >= 0:
        # TRL's extract_prompt cuts at the first differing character, so answers "I think" and "I don't"
        # would leave "I" in the prompt; in an HH-style transcript the answer starts after the last tag.
        return tag + len(_ASSISTANT_TAG)
    if 0 < len(shared) < min(len(chosen), len(rejected)) and shared[-1] == " ":
        return len(shared) - 1  # as TRL: the space before the answer stays with it
    return len(shared)


def _shared_turns(chosen: list[dict[str, Any]], rejected: list[dict[str, Any]]) -> int:
    """How many leading whole messages two conversations share (as TRL's extract_prompt)."""
    count = 0
    for mine, theirs in zip(chosen, rejected, strict=False):
        if mine != theirs:
            break
        count += 1
    return count
