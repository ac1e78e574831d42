"""How the quality pages write numbers: shares as percentages, '–' for what cannot be computed."""

from ..vocab import FLAGS

# Column headings for the three flags InstructGPT reports per model (figure 4); FLAGS has the full text.
SHORT_FLAGS = {
    "hallucination": "Hallucination",
    "fails_instruction": "Fails instruction",
    "inappropriate": "Inappropriate",
}


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def num(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def flag_heading(flag: str) -> tuple[str, str]:
    """(short heading, full question) of a flag."""
    return SHORT_FLAGS.get(flag, FLAGS[flag]), FLAGS[flag]
