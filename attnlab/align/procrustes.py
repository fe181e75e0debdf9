"""Orthogonal Procrustes between two embedding spaces, with optional self-learning refinement.

Follows Xing et al. 2015 and Artetxe et al. 2016 ("Learning principled bilingual mappings of word
embeddings while preserving monolingual invariance"): both spaces are length-normalised, mean-
centred and length-normalised again; then the orthogonal W minimising ||X W - Y||_F over the seed
pairs has the closed form W = U Vᵀ, where U Σ Vᵀ = svd(Xᵀ Y) (Schönemann 1966). Refinement follows
Conneau et al. 2018, section 3.2: map, induce a dictionary of mutual CSLS nearest neighbours among
the most frequent words, solve Procrustes again; repeated `refine` times (here the seed pairs stay
in the dictionary unless `keep_seed` is off).

Shapes: V vocabulary, D dimensions, p dictionary pairs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from attnlab.align.retrieval import CSLS_K, mutual_nearest
from attnlab.errors import AttnlabError

log = logging.getLogger(__name__)


@dataclass
class AlignConfig:
    """How two vector sets are aligned."""

    max_vocab: int = 50_000  # keep only the most frequent words of each side (0: all)
    refine: int = 0  # rounds of self-learning refinement after the supervised Procrustes
    refine_vocab: int = 15_000  # refinement induces pairs among this many most frequent words per side
    keep_seed: bool = True  # refinement dictionary = induced pairs ∪ seed pairs (False: induced only)
    csls_k: int = CSLS_K  # neighbourhood size of CSLS
    src_lang: str = "zh"  # label of the source side (messages, config.json)
    tgt_lang: str = "en"  # label of the target side


def normalize_embeddings(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit length, centre, unit length again: (V, D) -> ((V, D) float32, the mean removed (D,))."""
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mean = x.mean(axis=0)  # (D,)
    x = x - mean
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x.astype(np.float32), mean.astype(np.float32)


def procrustes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The orthogonal W (D, D) minimising ||x W - y||_F for paired rows x, y (p, D)."""
    if x.shape != y.shape or x.ndim != 2:
        raise AttnlabError(f"Procrustes needs paired rows of one width, got {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        raise AttnlabError("Procrustes needs at least one dictionary pair in both vocabularies")
    u, _, vt = np.linalg.svd(x.T.astype(np.float64) @ y.astype(np.float64))  # (D, D) each
    return (u @ vt).astype(np.float32)


@dataclass
class FitResult:
    """The mapping and what each step did."""

    w: np.ndarray  # (D, D) orthogonal: src_normalised @ w lies in the target space
    rounds: list[dict] = field(default_factory=list)  # per step: dictionary size, mean seed cosine


def _seed_cosine(src: np.ndarray, tgt: np.ndarray, pairs: np.ndarray, w: np.ndarray) -> float:
    mapped = src[pairs[:, 0]] @ w  # (p, D)
    return float(np.mean(np.sum(mapped * tgt[pairs[:, 1]], axis=1)))


def fit(src: np.ndarray, tgt: np.ndarray, seed: np.ndarray, cfg: AlignConfig) -> FitResult:
    """Procrustes on the seed pairs (p, 2) of row indices into normalised src (Vs, D) and tgt (Vt, D),
    then `cfg.refine` refinement rounds."""
    if src.shape[1] != tgt.shape[1]:
        raise AttnlabError(f"the two vector sets differ in dimension: {src.shape[1]} vs {tgt.shape[1]}")
    pairs = seed
    w = procrustes(src[pairs[:, 0]], tgt[pairs[:, 1]])
    result = FitResult(w, [{"round": 0, "pairs": len(pairs), "seed_cosine": _seed_cosine(src, tgt, seed, w)}])
    ns, nt = min(cfg.refine_vocab, len(src)), min(cfg.refine_vocab, len(tgt))
    for r in range(1, cfg.refine + 1):
        induced = mutual_nearest(src[:ns] @ w, tgt[:nt], cfg.csls_k)  # (q, 2)
        pairs = np.unique(np.concatenate([induced, seed]), axis=0) if cfg.keep_seed else induced
        w = procrustes(src[pairs[:, 0]], tgt[pairs[:, 1]])
        step = {"round": r, "induced": len(induced), "pairs": len(pairs),
                "seed_cosine": _seed_cosine(src, tgt, seed, w)}
        log.info("refinement round %d: %d mutual nearest neighbours, %d pairs, seed cosine %.3f",
                 r, len(induced), len(pairs), step["seed_cosine"])
        result.rounds.append(step)
        result.w = w
    return result
