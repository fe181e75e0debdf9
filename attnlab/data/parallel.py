"""Reading parallel sentence pairs for training and evaluation.

Owns the three input formats and how they become (source, target) pairs:
- the 4-column Tatoeba TSV with its header `zh_id\tzh\ten_id\ten` (oriented by direction);
- a plain 2-column TSV `src\ttgt` without header (taken as given);
- two aligned text files, one sentence per line (taken as given);
plus grouping pairs by source sentence for multi-reference BLEU. Every user error (missing file,
bad encoding, wrong column count, misaligned files, empty corpus) is an AttnlabError naming the
file (and line where there is one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

from attnlab.config import split_direction
from attnlab.data.normalize import normalizer
from attnlab.errors import AttnlabError
from attnlab.fileio import read_utf8

log = logging.getLogger(__name__)

TATOEBA_HEADER = ("zh_id", "zh", "en_id", "en")

Pair = tuple[str, str]
# A TSV file (4-column Tatoeba or 2-column), or (source file, target file) aligned by line ("src,tgt" too).
PairSpec = Union[str, Path, Sequence[Union[str, Path]]]


def _read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file (optional BOM), without line endings (LF or CRLF)."""
    lines = read_utf8(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline ends a line; it does not start an empty one
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _is_tatoeba(lines: list[str]) -> bool:
    return bool(lines) and tuple(lines[0].split("\t")) == TATOEBA_HEADER


def _read_tsv_columns(path: Path) -> tuple[list[Pair], bool]:
    """(pairs, is_tatoeba): Tatoeba rows as (zh, en), 2-column rows as (src, tgt)."""
    lines = _read_lines(path)
    tatoeba = _is_tatoeba(lines)
    width, start = (4, 2) if tatoeba else (2, 1)
    body = lines[1:] if tatoeba else lines
    pairs = []
    for lineno, line in enumerate(body, start=start):
        if not line.strip():
            continue  # blank lines carry no pair
        cols = line.split("\t")
        if len(cols) != width:
            kind = "zh_id TAB zh TAB en_id TAB en" if tatoeba else "src TAB tgt"
            raise AttnlabError(f"{path}:{lineno}: expected {width} tab-separated columns "
                               f"({kind}), found {len(cols)}")
        pairs.append((cols[1], cols[3]) if tatoeba else (cols[0], cols[1]))
    if not pairs:
        raise AttnlabError(f"no sentence pairs in {path}")
    return pairs, tatoeba


def read_tsv(path: str | Path) -> list[Pair]:
    """Pairs from a TSV: Tatoeba 4-column with header → (zh, en); 2-column → (src, tgt)."""
    return _read_tsv_columns(Path(path))[0]


def read_aligned(src_path: str | Path, tgt_path: str | Path) -> list[Pair]:
    """Pairs from two files aligned line by line; their line counts must agree."""
    src, tgt = _read_lines(Path(src_path)), _read_lines(Path(tgt_path))
    if len(src) != len(tgt):
        raise AttnlabError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: "
                           "aligned files need one sentence per line on both sides")
    if not src:
        raise AttnlabError(f"no sentence pairs in {src_path}")
    return list(zip(src, tgt))


@dataclass
class ParallelData:
    """Sentence pairs oriented as (source, target) for one translation direction."""

    pairs: list[Pair]  # (source sentence, target sentence), normalised
    direction: str  # "zh-en" or "en-zh"
    origin: str  # the file(s) the pairs came from, for messages

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def sources(self) -> list[str]:
        return [s for s, _ in self.pairs]

    @property
    def targets(self) -> list[str]:
        return [t for _, t in self.pairs]

    def references(self) -> list[tuple[str, list[str]]]:
        """Each distinct source with all its targets (see `group_references`)."""
        return group_references(self.pairs)


def load_pairs(spec: PairSpec, direction: str, *, normalise: bool = True) -> ParallelData:
    """Load pairs for `direction` ("zh-en" or "en-zh").

    `spec` is one TSV path or a (source path, target path) pair of aligned files, also written as
    "SRC_FILE,TGT_FILE" (as in a config's [data] table). Tatoeba 4-column files are oriented by
    direction (zh-en: zh → en; en-zh: en → zh); 2-column and aligned files are taken as (source, target)
    as given. With `normalise`, each side goes through `normalize_zh` / `normalize_en` by its language
    (a no-op on the canonical split), and pairs left with an empty side are dropped.
    """
    src_lang, tgt_lang = split_direction(direction)
    if isinstance(spec, str) and "," in spec:
        spec = [p.strip() for p in spec.split(",")]
    if isinstance(spec, (str, Path)):
        origin = str(spec)
        pairs, tatoeba = _read_tsv_columns(Path(spec))
        if tatoeba and direction == "en-zh":
            pairs = [(en, zh) for zh, en in pairs]
    elif len(spec) == 2:
        origin = f"{spec[0]} + {spec[1]}"
        pairs = read_aligned(spec[0], spec[1])
    else:
        raise AttnlabError(f"expected a TSV file or two aligned files, got {len(spec)} paths")
    if normalise:
        norm_src, norm_tgt = normalizer(src_lang), normalizer(tgt_lang)
        pairs = [(norm_src(s), norm_tgt(t)) for s, t in pairs]
        kept = [(s, t) for s, t in pairs if s and t]
        if len(kept) < len(pairs):
            log.warning("%s: dropped %d pairs with an empty side", origin, len(pairs) - len(kept))
        pairs = kept
    if not pairs:
        raise AttnlabError(f"no sentence pairs in {origin}")
    return ParallelData(pairs=pairs, direction=direction, origin=origin)


def load_dictionary(path: str | Path, direction: str, corpus_zh: Sequence[str] | None = None) -> list[Pair]:
    """Word pairs from a `zh TAB en` list (a dictionary such as data/cedict/train.tsv), normalised and
    oriented for `direction`. With `corpus_zh`, only headwords that occur in one of those Chinese sentences
    are kept. A list beside a `test.tsv` (the cedict split) must share no headword with it: the
    word-translation figures are scored on those."""
    path = Path(path)
    if path.name == "test.tsv":
        raise AttnlabError(f"= {path} is a test split: its headwords never enter training", field="data.dictionary")
    words = load_pairs(path, "zh-en").pairs  # a 2-column list is taken as (zh, en), normalised, empty sides dropped
    held_out = path.with_name("test.tsv")
    if held_out.is_file():
        overlap = {zh for zh, _ in words} & {zh for zh, _ in read_tsv(held_out)}
        if overlap:
            raise AttnlabError(f"= {path} shares {len(overlap)} headwords with {held_out} (e.g. {min(overlap)}): "
                               "test headwords never enter training", field="data.dictionary")
    if corpus_zh is not None:
        occurs = _Substrings(corpus_zh)
        words = [(zh, en) for zh, en in words if zh in occurs]
    if not words:
        raise AttnlabError(f"= {path} holds no word pairs" + (" whose headword occurs in the training sentences"
                                                             if corpus_zh is not None else ""), field="data.dictionary")
    return words if split_direction(direction)[0] == "zh" else [(en, zh) for zh, en in words]


class _Substrings:
    """Which strings occur in a list of sentences: a set of every substring up to 6 characters, a search
    of the joined text for longer ones (few headwords are longer)."""

    def __init__(self, sentences: Sequence[str], short: int = 6) -> None:
        self.short, self.text = short, "\n".join(sentences)
        self.seen = {s[i:i + n] for s in sentences for n in range(1, short + 1) for i in range(len(s) - n + 1)}

    def __contains__(self, word: str) -> bool:
        return word in self.seen if len(word) <= self.short else word in self.text


def group_references(pairs: Sequence[Pair]) -> list[tuple[str, list[str]]]:
    """Group pairs by source: sources in first-appearance order, their targets in file order.

    For multi-reference BLEU. In the Tatoeba files rows of one zh_id are sorted by en_id, so a
    group's first reference is the translation with the lowest en_id.
    """
    groups: dict[str, list[str]] = {}
    for src, tgt in pairs:
        groups.setdefault(src, []).append(tgt)
    return list(groups.items())
