"""Natural-language queries to FTS5 match expressions: terms OR-ed, ranked by bm25."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
# Words too common to help ranking; dropped unless the query has nothing else.
_STOPWORDS_TEXT = """
a an and are as at be but by can could did do does for from had has have how i in is it its me
my of on or s should so t that the this to was we were what when where which who why will with
would you your
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def fts_query(text: str) -> str | None:
    """Build an FTS5 MATCH expression that ORs the words of ``text``; None if it has none.

    Each term is quoted, so FTS5 syntax in user input (``AND``, ``NEAR``, ``*``, quotes)
    is matched as plain words.

    Example:
        >>> fts_query("Where did we put the cat?")
        '"put" OR "cat"'
    """
    words = [w.lower() for w in _WORD.findall(text)]
    kept = [w for w in words if w not in STOPWORDS] or words
    unique = list(dict.fromkeys(kept))
    if not unique:
        return None
    return " OR ".join(f'"{w}"' for w in unique)
