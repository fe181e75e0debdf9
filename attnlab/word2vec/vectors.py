"""Word vectors on disk and in memory: the one format every other part reads.

Owns: `WordVectors` (words in frequency order, their counts, a (V, D) float32 matrix), saving and
loading a vectors folder, the word2vec text and binary formats (Mikolov's C tool; gensim's
`KeyedVectors.load_word2vec_format` reads both), and cosine neighbours and analogies (3CosAdd,
as in Mikolov et al. 2013 and gensim's `most_similar`).

A vectors folder holds:
    vectors.safetensors   tensor "vectors", (V, D) float32
    vocab.tsv             `word TAB count`, one line per row of the matrix, most frequent first
    vectors.txt / .bin    the same vectors in word2vec text / binary format (written by `save`)
    config.json           how they were trained (written by the trainer; optional)
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_bytes, atomic_write_text, read_utf8

VECTORS_FILE = "vectors.safetensors"
VOCAB_FILE = "vocab.tsv"
TEXT_FILE = "vectors.txt"
BINARY_FILE = "vectors.bin"


@dataclass
class WordVectors:
    """Words, their corpus counts and one vector per word (row i belongs to words[i])."""

    words: list[str]
    vectors: np.ndarray  # (V, D) float32
    counts: np.ndarray | None = None  # (V,) int64, corpus frequencies; None when unknown
    index: dict[str, int] = field(init=False, repr=False)
    _unit: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.words):
            raise ValueError(f"vectors of shape {self.vectors.shape} do not match {len(self.words)} words")
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("duplicate words in the vocabulary")
        if self.counts is not None:
            self.counts = np.asarray(self.counts, dtype=np.int64)

    # ---- lookup -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> np.ndarray:
        return self.vectors[self.index[word]]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def unit(self) -> np.ndarray:
        """(V, D) rows scaled to length 1 (zero rows stay zero); computed once."""
        if self._unit is None:
            norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
            self._unit = self.vectors / np.maximum(norms, 1e-12)
        return self._unit

    def missing(self, words: list[str]) -> list[str]:
        """The words of `words` that have no vector."""
        return [w for w in words if w not in self.index]

    # ---- neighbours ---------------------------------------------------------------------------
    def most_similar(self, positive: list[str], negative: list[str] = (), topn: int = 10,
                     restrict: int | None = None) -> list[tuple[str, float]]:
        """Nearest words by cosine to mean(unit(positive)) - mean(unit(negative)) (gensim's 3CosAdd),
        excluding the query words; `restrict` searches only the `restrict` most frequent words."""
        unknown = self.missing(list(positive) + list(negative))
        if unknown:
            raise AttnlabError(f"not in the vocabulary: {' '.join(unknown)}")
        unit = self.unit()
        query = np.zeros(self.dim, dtype=np.float32)
        for w in positive:
            query += unit[self.index[w]]
        for w in negative:
            query -= unit[self.index[w]]
        query /= max(float(np.linalg.norm(query)), 1e-12)
        limit = len(self) if restrict is None else min(restrict, len(self))
        scores = unit[:limit] @ query  # (limit,)
        for w in list(positive) + list(negative):
            i = self.index[w]
            if i < limit:
                scores[i] = -np.inf
        k = min(topn, limit)
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.words[i], float(scores[i])) for i in top if np.isfinite(scores[i])]

    def analogy(self, a: str, b: str, c: str, topn: int = 10, restrict: int | None = None) -> list[tuple[str, float]]:
        """a is to b as c is to ?: most_similar(positive=[b, c], negative=[a])."""
        return self.most_similar([b, c], [a], topn=topn, restrict=restrict)

    def similarity(self, w1: str, w2: str) -> float:
        unit = self.unit()
        return float(unit[self.index[w1]] @ unit[self.index[w2]])

    # ---- folders ------------------------------------------------------------------------------
    def save(self, folder: Path, *, formats: tuple[str, ...] = ("safetensors", "text", "binary"),
             config: dict | None = None) -> None:
        """Write the vectors folder (every file atomically)."""
        from safetensors.numpy import save as st_save

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if "safetensors" in formats:
            atomic_write_bytes(folder / VECTORS_FILE, st_save({"vectors": self.vectors}))
            counts = self.counts if self.counts is not None else np.zeros(len(self), dtype=np.int64)
            atomic_write_text(folder / VOCAB_FILE, "".join(f"{w}\t{int(c)}\n" for w, c in zip(self.words, counts)))
        if "text" in formats:
            self.save_word2vec(folder / TEXT_FILE, binary=False)
        if "binary" in formats:
            self.save_word2vec(folder / BINARY_FILE, binary=True)
        if config is not None:
            atomic_write_text(folder / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: Path) -> "WordVectors":
        """Load a vectors folder, or a single word2vec .txt/.bin file."""
        path = Path(path)
        if path.is_dir():
            if (path / VECTORS_FILE).exists():
                return cls._load_folder(path)
            for name, binary in ((BINARY_FILE, True), (TEXT_FILE, False)):
                if (path / name).exists():
                    return cls.load_word2vec(path / name, binary=binary)
            raise AttnlabError(f"{path}: no {VECTORS_FILE}, {BINARY_FILE} or {TEXT_FILE} in this folder")
        if not path.exists():
            raise AttnlabError(f"{path}: no such vectors file or folder")
        return cls.load_word2vec(path, binary=path.suffix == ".bin")

    @classmethod
    def _load_folder(cls, folder: Path) -> "WordVectors":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            vectors = load_file(str(folder / VECTORS_FILE))["vectors"]
        except (SafetensorError, KeyError, OSError) as e:
            raise AttnlabError(f"{folder / VECTORS_FILE}: not a readable vectors file ({e})") from None
        vocab = folder / VOCAB_FILE
        words, counts = [], []
        for n, line in enumerate(read_utf8(vocab, "the vocabulary of a vectors folder").splitlines(), 1):
            word, sep, count = line.rpartition("\t")
            if not sep or not count.isdigit():
                raise AttnlabError(f"{vocab}:{n}: expected `word TAB count`")
            words.append(word)
            counts.append(int(count))
        if len(words) != vectors.shape[0]:
            raise AttnlabError(f"{folder}: {len(words)} words in {VOCAB_FILE} but {vectors.shape[0]} vectors")
        return cls(words, vectors, np.array(counts, dtype=np.int64))

    # ---- word2vec formats ---------------------------------------------------------------------
    def save_word2vec(self, path: Path, *, binary: bool) -> None:
        """Mikolov's format: header `V D`, then per word `word v1 v2 ...` (text) or
        `word ` + D little-endian float32 + newline (binary)."""
        buf = io.BytesIO()
        buf.write(f"{len(self)} {self.dim}\n".encode())
        if binary:
            rows = self.vectors.astype("<f4")
            for w, row in zip(self.words, rows):
                buf.write(w.encode("utf-8") + b" " + row.tobytes() + b"\n")
        else:
            for w, row in zip(self.words, self.vectors):
                buf.write((w + " " + " ".join(f"{x:.6g}" for x in row) + "\n").encode("utf-8"))
        atomic_write_bytes(Path(path), buf.getvalue())

    @classmethod
    def load_word2vec(cls, path: Path, *, binary: bool) -> "WordVectors":
        path = Path(path)
        data = path.read_bytes()
        try:
            nl = data.index(b"\n")
            n, dim = (int(x) for x in data[:nl].split())
        except ValueError:
            raise AttnlabError(f"{path}: not a word2vec file (first line must be `count dim`)") from None
        words: list[str] = []
        vectors = np.empty((n, dim), dtype=np.float32)
        pos = nl + 1
        try:
            for i in range(n):
                if binary:
                    sp = data.index(b" ", pos)
                    words.append(data[pos:sp].decode("utf-8").lstrip("\n"))
                    vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=sp + 1)
                    pos = sp + 1 + 4 * dim
                else:
                    end = data.index(b"\n", pos) if i < n - 1 else len(data)
                    parts = data[pos:end].decode("utf-8").rstrip().split(" ")
                    words.append(parts[0])
                    vectors[i] = np.array(parts[1:], dtype=np.float32)
                    pos = end + 1
        except (ValueError, IndexError, UnicodeDecodeError) as e:
            raise AttnlabError(f"{path}: malformed word2vec {'binary' if binary else 'text'} file "
                               f"at word {len(words) + 1} ({e})") from None
        return cls(words, vectors)
