"""What Postgres can store, checked before it gets there (where a refusal fails the whole request).

Text: no NUL character (a text column refuses it, and jsonb refuses it even escaped as \\u0000) and valid
Unicode (a lone surrogate such as \\ud800 cannot be encoded). JSON: no NaN or Infinity (jsonb has neither;
1e999 reads as Infinity), nested to a sane depth, and readable at all (Python refuses integers of 4,300
digits and more, and nesting past its recursion limit).
"""

import json
from typing import Any, NoReturn

JSON_MAX_DEPTH = 32
INT_MAX_DIGITS = 4000


def unstorable(value: object) -> str | None:
    """Why this text or JSON value cannot be stored, or None when it can."""
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "contains a NUL character (\\u0000), which cannot be stored"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "contains a lone surrogate (\\ud800 to \\udfff), which is not valid Unicode text"
        elif isinstance(item, dict | list):
            if depth >= JSON_MAX_DEPTH:
                return f"is nested more than {JSON_MAX_DEPTH} levels deep"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return None


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:20]} is out of range")
    return number


def _whole(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > INT_MAX_DIGITS:
        raise ValueError(f"a number has {digits} digits, more than {INT_MAX_DIGITS}")
    return int(text)


def loads(text: str) -> Any:
    """json.loads, refusing with a ValueError that says why what cannot be read or stored (above)."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite, parse_int=_whole)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg}, column {exc.colno}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
