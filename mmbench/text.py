"""Word tokens of names, keywords and captions in any script (one tokenizer for the whole project)."""

from __future__ import annotations

import re

# \w alone would split words at combining marks (Indic vowel signs, Arabic harakat, Thai vowels), so
# the ranges of combining marks used inside words are added, with ZWNJ/ZWJ (Persian, Indic).
TOKEN = re.compile(
    "[\\w\u0300-\u036F\u0483-\u0489\u0591-\u05C7\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06ED"
    "\u0900-\u0DFF\u0E31-\u0E3A\u0E47-\u0E4E\u0EB1-\u0ECD\u0F18-\u0FBC\u102B-\u103E\u1712-\u1734"
    "\u17B4-\u17D3\u1AB0-\u1AFF\u1DC0-\u1DFF\u200C\u200D\u20D0-\u20FF\uFE20-\uFE2F]+"
)


def tokenize(text: str) -> list[str]:
    """Lowercased word tokens; scripts written without spaces (ja, zh, th) give one token per run."""
    return TOKEN.findall(text.lower())
