"""From a text file to word ids: reading, optional Chinese segmentation, the vocabulary.

Owns: streaming a corpus (one sentence per line, or text8 style: one huge line read in chunks,
never whole), cutting lines into pieces of at most `max_sentence_length` words (as gensim's
`LineSentence`), segmenting raw Chinese with jieba, counting words, applying `min_count` /
`max_vocab`, and encoding the corpus into one int32 id array with sentence offsets. Words below
`min_count` are removed before windows are drawn, as word2vec.c and gensim do.

Legend: N words kept in the corpus, S sentences, V vocabulary size.
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnlab.errors import AttnlabError

log = logging.getLogger(__name__)
CHUNK_CHARS = 1 << 20  # characters read at a time


@dataclass
class EncodedCorpus:
    """The corpus as ids into `words` (most frequent first)."""

    words: list[str]  # (V,)
    counts: np.ndarray  # (V,) int64 corpus counts
    ids: np.ndarray  # (N,) int32
    starts: np.ndarray  # (S+1,) int64: sentence s is ids[starts[s]:starts[s+1]]
    raw_words: int  # words read, including those below min_count

    @property
    def n_words(self) -> int:
        return int(self.ids.shape[0])


def jieba_segmenter() -> Callable[[str], list[str]]:
    """jieba's default segmenter (the data recipes' one, `zh_mono.jieba_tokenizer`) on the text as it is."""
    from attnlab.data.zh_mono import jieba_tokenizer

    tokenizer = jieba_tokenizer()
    return lambda line: [t for t in tokenizer.lcut(line) if not t.isspace()]


def iter_lines(path: Path, max_len: int, segment: Callable[[str], list[str]] | None = None) -> Iterator[list[str]]:
    """Sentences of at most `max_len` tokens from a UTF-8 file, read CHUNK_CHARS at a time.

    A line is a sentence; a line longer than `max_len` tokens (text8 is one line of 17M words)
    is cut into consecutive pieces, without ever holding the whole line in memory."""
    path = Path(path)
    if not path.is_file():
        raise AttnlabError(f"{path}: no such corpus file")
    carry: list[str] = []  # tokens of the line being read
    tail = ""  # an unfinished token or line from the previous chunk
    with open(path, encoding="utf-8") as f:
        while True:
            try:
                chunk = f.read(CHUNK_CHARS)
            except UnicodeDecodeError:
                raise AttnlabError(f"{path} is not valid UTF-8 (byte {_first_bad_byte(path):,})") from None
            text = tail + chunk
            if not chunk:  # end of file
                lines, tail = [text], ""
            else:
                lines = text.split("\n")
                tail = lines.pop()
            for line in lines:
                carry.extend(segment(line) if segment else line.split())
                yield from _cut(carry, max_len, final=True)
                carry = []
            if segment is None and len(tail) > CHUNK_CHARS:  # one very long line: take its finished tokens
                cut = max(tail.rfind(" "), tail.rfind("\t"))
                if cut > 0:
                    carry.extend(tail[:cut].split())
                    tail = tail[cut + 1:]
                    yield from _cut(carry, max_len, final=False)
                    carry = carry[len(carry) - len(carry) % max_len:]  # the unfinished piece
            if not chunk:
                return


def _first_bad_byte(path: Path) -> int:
    """Offset of the first byte that does not decode as UTF-8 (-1 if none)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 16):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as e:
                return offset + e.start - len(decoder.getstate()[0])
            offset += len(block)
    return -1


def _cut(tokens: list[str], max_len: int, final: bool) -> Iterator[list[str]]:
    """Pieces of `max_len` tokens; the last shorter piece only when `final`."""
    n = len(tokens)
    full = n - n % max_len
    for i in range(0, full, max_len):
        yield tokens[i:i + max_len]
    if final and full < n:
        yield tokens[full:]


def encode(sentences: Iterable[list[str]], min_count: int, max_vocab: int | None = None,
           progress: Callable[[int], None] | None = None) -> EncodedCorpus:
    """Count and encode in one pass (provisional ids in order of first appearance), then keep the
    words seen at least `min_count` times, most frequent first (ties: first seen first)."""
    first_id: dict[str, int] = {}
    pids = array("i")
    lengths = array("q")
    for sent in sentences:
        if not sent:
            continue
        pids.extend([first_id.setdefault(w, len(first_id)) for w in sent])
        lengths.append(len(sent))
        if progress is not None:
            progress(len(sent))
    raw = np.frombuffer(pids, dtype=np.int32) if len(pids) else np.zeros(0, dtype=np.int32)
    if raw.size == 0:
        raise AttnlabError("the corpus has no words")
    counts = np.bincount(raw, minlength=len(first_id)).astype(np.int64)  # (V_all,)
    order = np.argsort(-counts, kind="stable")
    order = order[counts[order] >= min_count]
    if max_vocab is not None:
        order = order[:max_vocab]
    if order.size == 0:
        raise AttnlabError(f"no word occurs at least min_count={min_count} times "
                           f"({len(first_id)} distinct words, the most frequent {int(counts.max())} times)")
    remap = np.full(len(first_id), -1, dtype=np.int32)
    remap[order] = np.arange(order.size, dtype=np.int32)
    mapped = remap[raw]  # (N_raw,)
    kept = mapped >= 0
    sent_of = np.repeat(np.arange(len(lengths)), np.frombuffer(lengths, dtype=np.int64))
    per_sentence = np.bincount(sent_of[kept], minlength=len(lengths))
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(per_sentence, out=starts[1:])
    by_id = list(first_id)
    words = [by_id[i] for i in order]
    log.info("vocabulary: %d of %d distinct words occur >= %d times; %d of %d corpus words kept",
             len(words), len(first_id), min_count, int(kept.sum()), raw.size)
    return EncodedCorpus(words, counts[order], np.ascontiguousarray(mapped[kept]), starts, int(raw.size))
