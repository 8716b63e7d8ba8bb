"""Pure detectors over a question's text: arithmetic, questions about now, and answers.

:mod:`assistant.agent.route` uses them to decide the agent's first step without asking the
model: an expression goes to the calculator, a question about today's date or the time to
the clock. Strings in, strings out; no model, no tools.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from datetime import UTC
from zoneinfo import ZoneInfo

from assistant.tools.clock import resolve_zone


def _wordset(text: str) -> frozenset[str]:
    """The words of ``text``, as a set."""
    return frozenset(text.split())


# --- arithmetic ------------------------------------------------------------------------

_SUPERSCRIPTS = {"²": "**2", "³": "**3"}
_SYMBOLS = {"×": "*", "✕": "*", "÷": "/", "−": "-", "√": " sqrt "}
_WORD_OPERATORS = (
    (r"(\d)\s*(?:%|percent|per cent)\s+of\s+", r"\1/100*"),
    (r"\b(?:the\s+)?(?:square\s+root|sqrt)\s+of\b", " sqrt "),
    (r"\bto\s+the\s+power\s+of\b|\braised\s+to(?:\s+the\s+power\s+of)?\b", "**"),
    (r"\bsquared\b", "**2"),
    (r"\bcubed\b", "**3"),
    (r"\bmultiplied\s+by\b|\btimes\b", "*"),
    (r"\bdivided\s+by\b", "/"),
    (r"\bplus\b", "+"),
    (r"\bminus\b", "-"),
    (r"\bmod(?:ulo)?\b", "%"),
    (r"(?<=\d)\s*[xX]\s*(?=[\d(])", "*"),
)
_THOUSANDS = re.compile(r"\b\d{1,3}(?:,\d{3})+(?![\d.])")
# Dates, times and year ranges look like subtraction or division; they are not arithmetic.
_NOT_ARITHMETIC = re.compile(
    r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}:\d{2}\b|\b(?:1[89]|20)\d\d[-/](?:1[89]|20)?\d\d\b"
)
_SPAN = re.compile(r"(?:sqrt|[\d.+\-*/%() ])+")
_STRONG = re.compile(
    r"[+*×÷^√²³%]|\b(?:plus|minus|times|multiplied|divided|power|squared|cubed|percent|"
    r"square root|sqrt|modulo)\b",
    re.I,
)
_CUE = re.compile(
    r"\b(?:what(?:'s|\s+is|\s+are)|whats|calculate|compute|evaluate|solve|work\s+out|"
    r"how\s+much\s+(?:is|are|does|do))\b|=",
    re.I,
)
_FILLER = _wordset(
    "what whats s is are the of a an calculate compute evaluate solve work out how much please "
    "can could would you tell me i need to know equals equal result answer value quick hey hi "
    "hello give get find do does"
)
_LETTERS = re.compile(r"[^\W\d_]+")


def normalise(text: str) -> str:
    """Superscript powers spelled out, then compatibility forms and other scripts' digits."""
    for char, power in _SUPERSCRIPTS.items():
        text = text.replace(char, power)
    for char, ascii_char in _SYMBOLS.items():
        text = text.replace(char, ascii_char)
    text = unicodedata.normalize("NFKC", text).replace("’", "'")
    return "".join(
        str(unicodedata.decimal(c))
        if not c.isascii() and unicodedata.decimal(c, None) is not None
        else c
        for c in text
    )


def _balanced(span: str) -> str:
    """``span`` without the unmatched parentheses of the sentence around it."""
    span = span.strip()
    while span.startswith("(") and span.count("(") > span.count(")"):
        span = span[1:].strip()
    while span.endswith(")") and span.count(")") > span.count("("):
        span = span[:-1].strip()
    return span.rstrip(".").strip()


def _is_computation(expression: str) -> bool:
    """Whether ``expression`` parses and computes something (an operator or a function)."""
    if not re.search(r"\d", expression):
        return False
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.BinOp | ast.Call) for node in ast.walk(tree))


def arithmetic_expression(question: str) -> str | None:
    """The arithmetic the question asks for, as calculator input; None if it asks none.

    Operators in words and symbols are normalised ("15% of 80" gives ``15/100*80``, "2^10"
    ``2**10``, "12 × 7" ``12*7``, "1,250" ``1250``). A computation inside a longer request
    ("write 3-4 sentences about cats", "what happened on 9/11") is not routed: the rest of
    the question must be almost only question words.
    """
    text = normalise(question).replace("^", "**")
    text = _THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _NOT_ARITHMETIC.sub(" date ", text)
    for pattern, replacement in _WORD_OPERATORS:
        text = re.sub(pattern, replacement, text, flags=re.I)
    text = re.sub(r"\bsqrt\s*(\d+(?:\.\d+)?)", r"sqrt(\1)", re.sub(r"sqrt\s+\(", "sqrt(", text))
    best: tuple[int, str, tuple[int, int]] | None = None
    for match in _SPAN.finditer(text):
        expression = _balanced(match.group(0))
        if _is_computation(expression):
            size = sum(expression.count(op) for op in "+-*/%") + expression.count("sqrt")
            if best is None or size > best[0]:
                best = (size, expression, match.span())
    if best is None:
        return None
    _, expression, (start, end) = best
    rest = [w for w in _LETTERS.findall(text[:start] + " " + text[end:]) if w != "sqrt"]
    left = [w for w in rest if w.lower() not in _FILLER]
    strong = _STRONG.search(normalise(question)) is not None
    if len(left) == 0 or (_CUE.search(text) and len(left) <= 1) or (strong and len(left) <= 2):
        return re.sub(r"\s*\*\*\s*", "**", " ".join(expression.split()))
    return None


# --- date and time ---------------------------------------------------------------------

_UNIT = r"(time|date|day|weekday|year|month)"
_CLOCK_PATTERNS = (
    re.compile(
        rf"\b(?:what|which)(?:'s|\s+is)?\s+(?:the\s+)?(?:current\s+|local\s+)?{_UNIT}"
        r"(?:\s+of\s+the\s+week)?\s+(?:is\s+it|is\s+today|today|now|right\s+now|are\s+we\s+in|"
        r"is\s+this)\b"
    ),
    re.compile(
        rf"\bwhat(?:'s|\s+is)\s+(?:the\s+)?(?:current\s+|local\s+)?{_UNIT}(?:\s+of\s+the\s+week)?"
        r"\b(?!\s+(?:of|for|on|in|is|was|does|did|will|at)\s+(?:my|our|the|a|an|his|her|their)\b)"
    ),
    re.compile(rf"\b(?:today'?s|todays|current|local)\s+{_UNIT}\b"),
    re.compile(rf"\b{_UNIT}\s+(?:today|now|right\s+now)\b"),
    re.compile(r"\bwhat(?:'s|\s+is)\s+(today)\b"),
    re.compile(
        r"\bis\s+(?:it|today)\s+(?:a\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|"
        r"sunday|weekend|weekday)\b"
    ),
)
# A date or time *of something* is in the user's documents or memory, not on the clock.
_CLOCK_EXCLUDED = re.compile(
    r"\b(?:appointment|meeting|notes?|documents?|files?|calendar|birthday|deadline|flight|"
    r"train|bus|sunrise|sunset|opens?|closes?|remember|according|happen|born|died)\w*",
)
_ZONE = re.compile(r"\b(?i:in|at|for)\s+((?:[A-Z][\w/]*)(?:[ _][A-Z][\w/]*)*)")
_KINDS = {"weekday": "day", "today": "date", "weekend": "day"}


def clock_question(question: str) -> tuple[str, str] | None:
    """(time zone input, what is asked) if the question asks the current date or time."""
    text = normalise(question).lower()
    if _CLOCK_EXCLUDED.search(text):
        return None
    for pattern in _CLOCK_PATTERNS:
        match = pattern.search(text)
        if match is not None:
            word = match.group(1)
            kind = _KINDS.get(word, "day" if word.endswith("day") and word != "day" else word)
            return time_zone(question), kind
    return None


def time_zone(question: str) -> str:
    """The clock input for a zone named in the question ("in Tokyo"), else ``local``."""
    for match in _ZONE.finditer(normalise(question)):
        words = match.group(1).split()
        for n in range(len(words), 0, -1):
            zone = resolve_zone(" ".join(words[:n]))
            if isinstance(zone, ZoneInfo):
                return zone.key
            if zone is UTC:
                return "UTC"
    return "local"


# --- answering from an authoritative observation ---------------------------------------

_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _contains(text: str, piece: str) -> bool:
    """``piece`` in ``text`` (case-insensitive), not inside a longer word or number."""
    return (
        re.search(rf"(?<![\w.]){re.escape(piece.lower())}(?![\w]|\.\d)", text.lower()) is not None
    )


def _clock_pieces(observation: str, kind: str) -> list[str]:
    """What an answer to a ``kind`` question must contain, from a clock observation."""
    match = re.match(r"(\w+) (\d{4})-(\d{2})-(\d{2}), (\d{2}:\d{2})", observation)
    if match is None:
        return []
    weekday, year, month, day, hhmm = match.groups()
    month_name = _MONTHS[int(month) - 1]
    dates = [f"{year}-{month}-{day}", f"{month_name} {int(day)}", f"{int(day)} {month_name}"]
    return {
        "time": [hhmm, hhmm.lstrip("0")],
        "day": [weekday],
        "year": [year],
        "month": [month_name],
    }.get(kind, dates)


def answer_from(tool: str, kind: str, observation: str, answer: str) -> str:
    """``answer`` if it states what a calculator or clock ``observation`` says, else that.

    The calculator's result must appear in the answer (``6,912`` counts for ``6912``); for the
    clock, the piece a ``kind`` question asks for (the weekday for ``day``, the time for
    ``time``, the date for ``date``...), with no other date, time or weekday beside it.
    An error observation, or another tool's, leaves the answer as it is.
    """
    text = observation.strip()
    if not text or text.startswith("error:"):
        return answer
    if tool == "calculator":
        grouped = f"{int(text):,}" if text.lstrip("-").isdigit() else text
        return answer if _contains(answer, text) or _contains(answer, grouped) else text
    if tool != "clock":
        return answer
    pieces = _clock_pieces(text, kind)
    stated = re.findall(r"\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}", answer)
    weekdays = [w for w in _WEEKDAYS if _contains(answer, w)]
    consistent = all(_contains(text, s) for s in stated) and all(
        _contains(text, w) for w in weekdays
    )
    if pieces and consistent and any(_contains(answer, p) for p in pieces):
        return answer
    return clock_sentence(text)


def clock_sentence(observation: str) -> str:
    """A clock observation as an answer stating every piece: weekday, date, month, time.

    "Tuesday 2025-07-01, 12:30:05 UTC (UTC+0000, ISO ...)" reads "Tuesday 1 July 2025,
    12:30:05 UTC" (the ISO date alone answers no "which month" question).
    """
    plain = observation.split(" (UTC", 1)[0]
    match = re.match(r"(\w+) (\d{4})-(\d{2})-(\d{2}), (.*)", plain)
    if match is None:
        return plain
    weekday, year, month, day, rest = match.groups()
    return f"{weekday} {int(day)} {_MONTHS[int(month) - 1].title()} {year}, {rest}"
