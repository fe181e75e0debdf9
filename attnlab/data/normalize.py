"""Text normalisation shared by the data recipe and by translation at run time.

Owns: Unicode NFC, whitespace collapsing, Traditional→Simplified Chinese (OpenCC `t2s`, pinned
opencc==1.4.2), and the keys used to deduplicate pairs and detect dev/test leakage
(see shared/DATA.md, "Parallel Chinese–English").
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

import opencc


def collapse_whitespace(text: str) -> str:
    """Strip both ends and turn every run of whitespace into one ASCII space.

    "Whitespace" is what `str.split()` splits on (`str.isspace()`): ASCII space, tab, newline,
    CR, plus Unicode spaces such as U+3000 IDEOGRAPHIC SPACE, U+00A0, U+202F. Zero-width and
    format characters (U+200B, U+00AD) are not whitespace and are kept.
    """
    return " ".join(text.split())


def remove_whitespace(text: str) -> str:
    """The text with every whitespace character removed (the Chinese dedupe/bucketing key)."""
    return "".join(text.split())


@functools.lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    """The OpenCC Traditional→Simplified converter, built once on first use."""
    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Convert Traditional Chinese characters to Simplified; other text passes through."""
    return _t2s().convert(text)


def normalize_en(text: str) -> str:
    """NFC, then collapse whitespace."""
    return collapse_whitespace(unicodedata.normalize("NFC", text))


def normalize_zh(text: str) -> str:
    """NFC, collapse whitespace, then Traditional→Simplified with OpenCC `t2s`."""
    return to_simplified(normalize_en(text))


def normalizer(lang: str) -> Callable[[str], str]:
    """The normalisation of a language's text: `normalize_zh` for "zh", `normalize_en` otherwise."""
    return normalize_zh if lang == "zh" else normalize_en


_NON_WORD = re.compile(r"[\W_]+")


def en_key(text: str) -> str:
    """Lowercased English with punctuation and underscores turned into single spaces.

    Used to find train pairs whose English also appears in dev or test.
    """
    return _NON_WORD.sub(" ", text.lower()).strip()
