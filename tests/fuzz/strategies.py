"""Hypothesis strategies for hostile input: text with NUL bytes, lone surrogates, BOMs and odd line breaks,
any JSON value (huge, non-finite and wrong-typed numbers included), and the settings the fuzz tests share."""

import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Reproducible in CI (derandomize), no deadline (a shared database is slow), each example in a savepoint.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


def mostly(good: st.SearchStrategy, bad: st.SearchStrategy) -> st.SearchStrategy:
    """Good values three times in four (st.one_of counts a repeated strategy once), so that whole inputs
    come out valid often enough to test what gets stored, not only what gets refused."""
    return st.integers(0, 3).flatmap(lambda n: bad if n == 0 else good)


# Characters that break storage and parsing: NUL, lone surrogates, a BOM, CR, line/paragraph separators.
TRICKY = ["\x00", "\ud800", "\udfff", "\ufeff", "\r", "\n", "\u2028", "\x85", "\t", " "]
any_text = st.text(st.one_of(st.characters(exclude_categories=()), st.sampled_from(TRICKY)), max_size=20)
plain_text = st.text(st.characters(categories=["L", "N", "P", "Zs"]), min_size=1, max_size=30).filter(
    str.strip
)
# Good text with one tricky character inside: only that character can make it fail.
spiced_text = st.tuples(plain_text, st.sampled_from(TRICKY), plain_text).map("".join)

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
)
json_scalars = st.one_of(st.none(), st.booleans(), numbers, any_text)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)

# Whole lines no JSON encoder writes: numbers too long or too large, nesting too deep, bare words.
RAW_LINES = [
    '{"text": 1' + "0" * 5000 + ', "category": "other"}',
    '{"text": "x", "category": "other", "metadata": {"n": 1e999}}',
    '{"text": "x", "category": "other", "metadata": {"n": NaN}}',
    "[" * 50_000 + "]" * 50_000,
    '{"text": "a\\u0000b", "category": "other"}',
    '{"text": "\\ud800", "category": "other"}',
    "\ufeff{}",
    "null",
    "{",
]
raw_lines = st.one_of(st.sampled_from(RAW_LINES), any_text)


@st.composite
def files(draw, lines: st.SearchStrategy[list[str]]) -> bytes:
    """The lines in order, blank lines among them, joined by LF or CRLF, maybe after a BOM; now and then
    raw bytes instead."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=80))
    chosen = []
    for line in draw(lines):
        chosen.extend([*draw(st.lists(st.sampled_from(["", "   "]), max_size=1)), line])
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(chosen) + draw(st.sampled_from(["", newline]))
    bom = draw(st.sampled_from([b"", b"\xef\xbb\xbf"]))
    return bom + text.encode("utf-8", errors="surrogatepass")  # a lone surrogate: invalid UTF-8


@st.composite
def json_lines(draw, records: st.SearchStrategy[dict]) -> str:
    """A record as a JSON line (ASCII escapes such as \\u0000 or the characters themselves), or a line
    that is no record: another JSON value, or raw text."""
    if draw(st.integers(0, 7)) == 0:
        return draw(raw_lines)
    value = draw(mostly(records, json_values))
    return json.dumps(value, ensure_ascii=draw(st.booleans()))
