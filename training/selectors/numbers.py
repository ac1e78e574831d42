"""Figures as the pages write them: times in words, and JSON that every browser parses: Python writes NaN and Infinity into JSON, JavaScript's JSON.parse
refuses them, and one such metric (a loss at step one, an empty evaluation) would stop a live page."""

import math
from typing import Any


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float, however deep, replaced by None (JSON null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def duration_words(seconds: float | None) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'; '' for None."""
    if seconds is None:
        return ""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
