"""Starting a translation model's subword embeddings from trained word vectors.

Owns the mapping from a word-level space (Word2Vec output) to the rows of a subword embedding
matrix, for one subword vocabulary:
1. a piece that is itself a word (`▁cat` → "cat", `我们` → "我们") takes that word's vector;
2. every other piece takes the average of the vectors of the words it appears in, each word
   segmented by the model's own tokenizer (over the `top` most frequent words);
3. pieces covered neither way keep their random initialisation.
The word vectors are centred, mapped into the model's width by a fixed random matrix with
orthonormal columns (cosines between words are kept when the model is wider), and scaled so that
the rows' mean length equals that of the random initialisation they replace; the model then
trains as usual. Several vector folders (say Chinese and English for a joint vocabulary) can be
given; the first that covers a piece wins, whole-word matches before averages.

Legend: V subword vocabulary, W word-vector size, D model width.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from attnlab.errors import AttnlabError
from attnlab.word2vec.vectors import WordVectors

log = logging.getLogger(__name__)
WORD_BOUNDARY = "▁"  # sentencepiece's mark for a piece that starts a word
FIRST_ORDINARY_ID = 4  # ids below are <pad> <bos> <eos> <unk>


@dataclass
class InitReport:
    """How many subword rows each rule filled."""

    whole_words: int
    averaged: int
    untouched: int

    def __str__(self) -> str:
        return (f"{self.whole_words} pieces from whole words, {self.averaged} averaged over the words "
                f"they occur in, {self.untouched} left random")


def subword_vectors(vectors: Sequence[WordVectors], pieces: Sequence[str],
                    encode: Callable[[str], list[int]], top: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """(V, W) float32 matrix and (V,) int8 rule per piece (0 none, 1 whole word, 2 averaged)."""
    dims = {v.dim for v in vectors}
    if len(dims) != 1:
        raise AttnlabError(f"vectors must all have the same size, got {sorted(dims)}", field="train.init_embeddings")
    w = dims.pop()
    out = np.zeros((len(pieces), w), dtype=np.float32)  # (V, W)
    rule = np.zeros(len(pieces), dtype=np.int8)
    centred = [v.vectors - v.vectors.mean(axis=0, keepdims=True) for v in vectors]  # each (V_words, W)
    for vec, cen in zip(vectors, centred):
        for i in range(FIRST_ORDINARY_ID, len(pieces)):
            if rule[i]:
                continue
            word = pieces[i].lstrip(WORD_BOUNDARY)
            row = vec.index.get(word, vec.index.get(word.lower()))
            if word and row is not None:
                out[i], rule[i] = cen[row], 1
    for vec, cen in zip(vectors, centred):
        sums = np.zeros_like(out)
        counts = np.zeros(len(pieces), dtype=np.int64)
        for row, word in enumerate(vec.words[:top]):
            for i in set(encode(word)):
                if i >= FIRST_ORDINARY_ID and rule[i] == 0:
                    sums[i] += cen[row]
                    counts[i] += 1
        fill = counts > 0
        out[fill] = sums[fill] / counts[fill, None]
        rule[fill] = 2
    return out, rule


def project(matrix: np.ndarray, width: int, seed: int = 0) -> np.ndarray:
    """(V, W) -> (V, D) through a fixed random (W, D) matrix with orthonormal rows or columns."""
    w = matrix.shape[1]
    if w == width:
        return matrix
    g = np.random.default_rng(seed).standard_normal((max(w, width), min(w, width)))
    q, _ = np.linalg.qr(g)  # (max, min), orthonormal columns
    basis = q if w > width else q.T  # (W, D)
    return matrix @ basis.astype(np.float32)


@torch.no_grad()
def init_embedding(weight: torch.Tensor, vectors: Sequence[WordVectors], pieces: Sequence[str],
                   encode: Callable[[str], list[int]], seed: int = 0) -> InitReport:
    """Overwrite the covered rows of `weight` (V, D) in place; see the module docstring."""
    words, rule = subword_vectors(vectors, pieces, encode)
    covered = rule > 0
    if covered.any():
        mapped = project(words[covered], weight.shape[1], seed)  # (C, D)
        target = weight.norm(dim=1)[torch.from_numpy(covered)].mean().item()
        mapped *= target / max(float(np.linalg.norm(mapped, axis=1).mean()), 1e-12)
        weight[torch.from_numpy(covered)] = torch.from_numpy(mapped).to(weight.dtype).to(weight.device)
    return InitReport(int((rule == 1).sum()), int((rule == 2).sum()), int(len(pieces) - FIRST_ORDINARY_ID - covered.sum()))


def load_vector_folders(spec: str) -> list[WordVectors]:
    """Comma-separated vector folders (the train.init_embeddings config value)."""
    return [WordVectors.load(Path(p.strip())) for p in spec.split(",") if p.strip()]
