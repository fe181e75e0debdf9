"""Bilingual dictionaries: reading `src TAB tgt` pair files and matching them to two vocabularies.

The format is that of `attnlab data fetch cedict` and of the MUSE dictionaries of Conneau et al.
2018 (one pair per line, separated by a tab or a space; `#` starts a comment line). A word missing
from a vocabulary is reported (counted and logged), never an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnlab.errors import AttnlabError
from attnlab.fileio import read_utf8

log = logging.getLogger(__name__)


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """(src, tgt) pairs of a dictionary file, in file order, repeats dropped."""
    text = read_utf8(path, "dictionary")
    pairs: dict[tuple[str, str], None] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        if len(cols) != 2 or not cols[0].strip() or not cols[1].strip():
            raise AttnlabError(f"{path}:{n}: expected `source TAB target`, got {line!r}")
        pairs[(cols[0].strip(), cols[1].strip())] = None
    if not pairs:
        raise AttnlabError(f"{path}: no dictionary pairs")
    return list(pairs)


@dataclass
class Matched:
    """A dictionary matched against two vocabularies."""

    ids: np.ndarray  # (p, 2) int64 row indices of the pairs with both words known
    unknown_src: list[str] = field(default_factory=list)  # source words with no vector (unique, in order)
    unknown_tgt: list[str] = field(default_factory=list)  # target words with no vector

    def summary(self) -> dict[str, int]:
        return {"pairs": len(self.ids), "unknown_src": len(self.unknown_src), "unknown_tgt": len(self.unknown_tgt)}


def match(pairs: list[tuple[str, str]], src_index: dict[str, int], tgt_index: dict[str, int]) -> Matched:
    """Row indices of the pairs whose words both have vectors; the rest reported as unknown."""
    ids, unknown_src, unknown_tgt = [], {}, {}
    for s, t in pairs:
        i, j = src_index.get(s), tgt_index.get(t)
        if i is None:
            unknown_src[s] = None
        if j is None:
            unknown_tgt[t] = None
        if i is not None and j is not None:
            ids.append((i, j))
    m = Matched(np.array(ids, dtype=np.int64).reshape(-1, 2), list(unknown_src), list(unknown_tgt))
    log.info("dictionary: %d of %d pairs usable; %d source and %d target words not in the vocabularies",
             len(ids), len(pairs), len(m.unknown_src), len(m.unknown_tgt))
    return m
