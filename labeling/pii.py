"""Personally identifiable information in prompt text (InstructGPT filters it from training data).

Regular expressions for e-mail addresses, phone numbers, payment card numbers (Luhn-checked) and
IPv4/IPv6 addresses. `find_pii` names what it found; `scrub_pii` replaces each with a placeholder.
"""

import ipaddress
import re

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
PHONE = re.compile(
    r"(?<![\w.])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?![\w.])"
)
CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _cards(text: str) -> list[re.Match]:
    return [m for m in CARD.finditer(text) if _luhn_ok(re.sub(r"\D", "", m.group()))]


def _ips(text: str) -> list[re.Match]:
    found = []
    for pattern in (IPV4, IPV6):
        for m in pattern.finditer(text):
            try:
                ipaddress.ip_address(m.group())
            except ValueError:
                continue
            found.append(m)
    return found


def _matches(text: str) -> list[tuple[str, re.Match]]:
    found = [("email", m) for m in EMAIL.finditer(text)]
    found += [("card", m) for m in _cards(text)]
    found += [("ip", m) for m in _ips(text)]
    taken = [m.span() for _, m in found]
    for m in PHONE.finditer(text):
        if not any(s <= m.start() < e or s < m.end() <= e for s, e in taken):
            found.append(("phone", m))
    return found


def find_pii(text: str) -> list[str]:
    """Kinds of PII in the text, e.g. ['email', 'phone']; empty when none."""
    return sorted({kind for kind, _ in _matches(text)})


def scrub_pii(text: str) -> str:
    """The text with each PII span replaced by [EMAIL], [PHONE], [CARD] or [IP]."""
    spans = sorted(((m.start(), m.end(), kind) for kind, m in _matches(text)), reverse=True)
    last_start = len(text) + 1
    for start, end, kind in spans:
        if end > last_start:
            continue  # overlaps a span already replaced
        text = text[:start] + f"[{kind.upper()}]" + text[end:]
        last_start = start
    return text
