"""An aligned space: two vector sets in one coordinate system, saved as a folder, queried for
translations and scored on a test dictionary.

Owns the aligned folder, fitting it from two vector sets and a seed dictionary (`align_vectors`),
word translation by cosine or CSLS nearest neighbour, and precision@k in both directions as in
Conneau et al. 2018 (a query counts as correct at k when any of its dictionary translations is
among its k nearest neighbours; precision is over the queries that have a vector and at least one
translation with a vector, and that coverage is reported beside it; `of_all` gives the same
precision over every query, the uncovered ones counted as misses, so that spaces with different
vocabularies compare on the same test words).

An aligned folder holds:
    src/                 the source words, mapped into the target space (a vectors folder, unit rows)
    tgt/                 the target words, normalised (a vectors folder, unit rows)
    mapping.safetensors  W (D, D) orthogonal, src_mean and tgt_mean (D,) removed before mapping,
                         src_csls_r (Vs,) and tgt_csls_r (Vt,): the CSLS penalties of every word
    config.json          the AlignConfig, the inputs and the fitting statistics

Shapes: Vs source words, Vt target words, D dimensions.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from attnlab.align import dictionary, procrustes, retrieval
from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_bytes, atomic_write_text
from attnlab.word2vec.vectors import WordVectors

log = logging.getLogger(__name__)

MAPPING_FILE = "mapping.safetensors"
CONFIG_FILE = "config.json"
METHODS = ("csls", "cosine")
KS = (1, 5, 10)


@dataclass
class Translation:
    """Candidates for one query word; `candidates` is None when the word has no vector."""

    word: str
    candidates: list[tuple[str, float]] | None  # (word, score), best first


@dataclass
class AlignedSpace:
    """Source and target words in one space, with what is needed to search it."""

    src: WordVectors  # (Vs, D) mapped source vectors, unit rows
    tgt: WordVectors  # (Vt, D) target vectors, unit rows
    w: np.ndarray  # (D, D) orthogonal map applied to the normalised source vectors
    src_mean: np.ndarray  # (D,) mean removed from the unit source vectors before mapping
    tgt_mean: np.ndarray  # (D,) mean removed from the unit target vectors
    src_r: np.ndarray  # (Vs,) mean cosine of each source word to its k nearest target words
    tgt_r: np.ndarray  # (Vt,) mean cosine of each target word to its k nearest source words
    info: dict  # config.json: the AlignConfig, inputs and statistics

    @property
    def langs(self) -> tuple[str, str]:
        return self.info["config"]["src_lang"], self.info["config"]["tgt_lang"]

    # ---- search -------------------------------------------------------------------------------
    def _sides(self, reverse: bool):
        """(query vectors, query r, target vectors, target r) for one direction."""
        if reverse:
            return self.tgt, self.tgt_r, self.src, self.src_r
        return self.src, self.src_r, self.tgt, self.tgt_r

    def neighbours(self, ids: np.ndarray, *, reverse: bool = False, method: str = "csls",
                   n: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """Top-n target rows for query rows `ids` (m,): (indices (m, n), scores (m, n))."""
        if method not in METHODS:
            raise AttnlabError(f"unknown retrieval method {method!r}; choose one of {', '.join(METHODS)}")
        q, q_r, t, t_r = self._sides(reverse)
        if method == "cosine":
            return retrieval.search(q.vectors[ids], t.vectors, n)
        return retrieval.search(q.vectors[ids], t.vectors, n, query_penalty=q_r[ids], target_penalty=t_r)

    def translate(self, words: list[str], *, reverse: bool = False, method: str = "csls",
                  n: int = 5) -> list[Translation]:
        """Translate each word (source → target, or target → source with `reverse`); words without a
        vector come back with `candidates=None`."""
        q, _, t, _ = self._sides(reverse)
        known = [w for w in words if w in q.index]
        if known:
            idx, val = self.neighbours(np.array([q.index[w] for w in known]), reverse=reverse,
                                       method=method, n=n)
            found = {w: [(t.words[j], float(s)) for j, s in zip(row_i, row_s)]
                     for w, row_i, row_s in zip(known, idx, val)}
        else:
            found = {}
        unknown = [w for w in words if w not in found]
        if unknown:
            log.warning("not in the %s vocabulary: %s", self.langs[1 if reverse else 0], " ".join(unknown))
        return [Translation(w, found.get(w)) for w in words]

    def ranked(self, words: list[str], *, reverse: bool = False, method: str = "csls",
               n: int = 5) -> dict[str, list[str]]:
        """word -> its n nearest translations, best first, for the words that have a vector."""
        q, _, t, _ = self._sides(reverse)
        known = [w for w in words if w in q.index]
        idx, _ = self.neighbours(np.array([q.index[w] for w in known], dtype=np.int64), reverse=reverse,
                                 method=method, n=n)  # (m, n)
        return {w: [t.words[j] for j in row] for w, row in zip(known, idx)}

    # ---- evaluation ---------------------------------------------------------------------------
    def evaluate(self, pairs: list[tuple[str, str]], ks: tuple[int, ...] = KS) -> dict:
        """Precision@k (in %) for cosine and CSLS, source→target and target→source."""
        s, t = self.langs
        forward, backward = gold_sets(pairs)
        return {f"{s}-{t}": self._precision(forward, False, ks),
                f"{t}-{s}": self._precision(backward, True, ks)}

    def _precision(self, gold: dict[str, set[str]], reverse: bool, ks: tuple[int, ...]) -> dict:
        q, _, t, _ = self._sides(reverse)
        queries = [w for w in gold if w in q.index and any(g in t.index for g in gold[w])]
        out = {"queries": len(gold), "covered": len(queries),
               "coverage": round(100 * len(queries) / max(len(gold), 1), 2), "of_all": {}}
        for method in METHODS:
            ranked = self.ranked(queries, reverse=reverse, method=method, n=max(ks))
            out[method], out["of_all"][method] = precision_at_k(gold, ranked, ks)
        return out

    # ---- folders ------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        from safetensors.numpy import save as st_save

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.src.save(folder / "src", formats=("safetensors",))
        self.tgt.save(folder / "tgt", formats=("safetensors",))
        tensors = {"w": self.w, "src_mean": self.src_mean, "tgt_mean": self.tgt_mean,
                   "src_csls_r": self.src_r, "tgt_csls_r": self.tgt_r}
        atomic_write_bytes(folder / MAPPING_FILE,
                           st_save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}))
        atomic_write_text(folder / CONFIG_FILE, json.dumps(self.info, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "AlignedSpace":
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        folder = Path(folder)
        if not (folder / MAPPING_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
            raise AttnlabError(f"{folder}: not an aligned folder (needs {MAPPING_FILE} and {CONFIG_FILE}; "
                               f"write one with `attnlab align fit`)")
        try:
            t = load_file(str(folder / MAPPING_FILE))
            info = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        except (SafetensorError, OSError, ValueError) as e:
            raise AttnlabError(f"{folder}: unreadable aligned folder ({e})") from None
        src, tgt = WordVectors.load(folder / "src"), WordVectors.load(folder / "tgt")
        if t["src_csls_r"].shape != (len(src),) or t["tgt_csls_r"].shape != (len(tgt),):
            raise AttnlabError(f"{folder}: {MAPPING_FILE} does not match the words in src/ and tgt/")
        return cls(src, tgt, t["w"], t["src_mean"], t["tgt_mean"], t["src_csls_r"], t["tgt_csls_r"], info)


def gold_sets(pairs: list[tuple[str, str]]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(source word -> its target translations, target word -> its source translations)."""
    forward: dict[str, set[str]] = {}
    backward: dict[str, set[str]] = {}
    for a, b in pairs:
        forward.setdefault(a, set()).add(b)
        backward.setdefault(b, set()).add(a)
    return forward, backward


def precision_at_k(gold: dict[str, set[str]], ranked: dict[str, list[str]],
                   ks: tuple[int, ...] = KS) -> tuple[dict, dict]:
    """P@k in %, (over the queries in `ranked`, over every query in `gold`): a query is right at k
    when one of its gold translations is among its first k candidates; a query of `gold` missing
    from `ranked` (uncovered) counts as a miss in the second. Over no covered query the first is None."""
    first_hit = [next((r for r, c in enumerate(cands) if c in gold[w]), np.inf) for w, cands in ranked.items()]
    hits = np.array(first_hit, dtype=np.float64)  # (covered,) rank of the first right candidate
    covered = {f"p@{k}": round(100 * float(np.mean(hits < k)), 2) if len(hits) else None for k in ks}
    every = {f"p@{k}": round(100 * float(np.sum(hits < k)) / max(len(gold), 1), 2) for k in ks}
    return covered, every


def truncate(vectors: WordVectors, max_vocab: int) -> WordVectors:
    """The first `max_vocab` words (vector files list the most frequent first); 0 keeps all."""
    if max_vocab <= 0 or len(vectors) <= max_vocab:
        return vectors
    counts = None if vectors.counts is None else vectors.counts[:max_vocab]
    return WordVectors(vectors.words[:max_vocab], vectors.vectors[:max_vocab], counts)


def align_vectors(src: WordVectors, tgt: WordVectors, pairs: list[tuple[str, str]],
                  cfg: procrustes.AlignConfig, inputs: dict | None = None) -> AlignedSpace:
    """Normalise both sets, fit the Procrustes map (and refinement) on `pairs`, compute the CSLS
    penalties; `inputs` (paths, for the record) goes into config.json."""
    src, tgt = truncate(src, cfg.max_vocab), truncate(tgt, cfg.max_vocab)
    if src.dim != tgt.dim:
        raise AttnlabError(f"the vector sets differ in dimension: {cfg.src_lang} {src.dim}, {cfg.tgt_lang} {tgt.dim}")
    matched = dictionary.match(pairs, src.index, tgt.index)
    if len(matched.ids) == 0:
        raise AttnlabError(f"no dictionary pair has both words in the vocabularies "
                           f"(e.g. unknown {cfg.src_lang} words: {' '.join(matched.unknown_src[:5])})")
    xs, src_mean = procrustes.normalize_embeddings(src.vectors)  # (Vs, D)
    xt, tgt_mean = procrustes.normalize_embeddings(tgt.vectors)  # (Vt, D)
    result = procrustes.fit(xs, xt, matched.ids, cfg)
    mapped = xs @ result.w  # (Vs, D), still unit rows: W is orthogonal
    src_r, tgt_r = retrieval.csls_penalties(mapped, xt, cfg.csls_k)
    info = {"config": asdict(cfg), "inputs": inputs or {}, "vocab": {"src": len(src), "tgt": len(tgt), "dim": src.dim},
            "dictionary": {"given": len(pairs), **matched.summary()}, "rounds": result.rounds}
    return AlignedSpace(WordVectors(src.words, mapped, src.counts), WordVectors(tgt.words, xt, tgt.counts),
                        result.w, src_mean, tgt_mean, src_r, tgt_r, info)
