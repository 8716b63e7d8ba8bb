"""Scrubbing personal data from training text: e-mail, card and phone numbers, IP addresses.

Every pattern runs in time linear in the text: ``train prepare`` scrubs whatever a user
pasted into a conversation, a 2 MB log included.
"""

from __future__ import annotations

import re

# An e-mail address is what `[\w.+-]+@[\w-]+\.[\w.-]+` matches. Searched as written, that
# pattern retries every position of a long word (quadratic: 40k characters took 4.5 s), so
# _EMAIL only starts where a run of address characters starts and never backtracks into a
# run (backtracking cannot help: "@" and "." are where the runs end). One case needs
# _EMAIL_AT: a match can end just before a "+", which the old search took as the start of
# the next address ("x@y.z+w@v.u" is two of them).
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]++@[\w-]++\.[\w.-]++")
_EMAIL_AT = re.compile(r"[\w.+-]++@[\w-]++\.[\w.-]++")
# Linear as written: card and IP numbers are bounded repetitions, and a phone number's run is
# scanned from a handful of starts at most (any digit in it before a non-word character ends
# a match there).
_PII = [
    ("[CARD]", re.compile(r"\b(?:\d[ -]?){13,19}\b")),
    ("[IP]", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
    ("[PHONE]", re.compile(r"(?<!\w)\+?\d[\d ().-]{7,}\d(?!\w)")),
]


def scrub_pii(text: str) -> str:
    """Replace e-mail addresses, card-like numbers, IPv4 addresses and phone numbers."""
    text = _scrub_emails(text)
    for placeholder, pattern in _PII:
        text = pattern.sub(placeholder, text)
    return text


def _scrub_emails(text: str) -> str:
    """Replace e-mail addresses with ``[EMAIL]``, in one left-to-right pass."""
    if "@" not in text:
        return text
    parts: list[str] = []
    pos = 0
    found = _EMAIL.search(text)
    while found:
        parts += [text[pos : found.start()], "[EMAIL]"]
        pos = found.end()
        found = (text.startswith("+", pos) and _EMAIL_AT.match(text, pos)) or _EMAIL.search(
            text, pos
        )
    parts.append(text[pos:])
    return "".join(parts)
