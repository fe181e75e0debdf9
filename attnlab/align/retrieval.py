"""Nearest neighbours across two embedding spaces: cosine and CSLS, in row batches.

Follows Conneau et al. 2018, "Word Translation Without Parallel Data", section 2.3: for a mapped
source word x and a target word y,
    CSLS(x, y) = 2 cos(x, y) - r_T(x) - r_S(y),
where r_T(x) is the mean cosine of x to its k nearest target words and r_S(y) the mean cosine of y
to its k nearest (mapped) source words (k = 10). Words that are close to everything ("hubs") get a
large r and are pushed down. Every function takes rows of length 1, so a dot product is a cosine;
rows may be a NumPy array or a SciPy sparse matrix (TF-IDF rows, attnlab/align/bytranslation.py).
Scores are computed `batch` query rows at a time, so a 50k x 50k search never holds more than
(batch, n) floats.

Shapes: m queries, n targets, D dimensions, k neighbours.
"""

from __future__ import annotations

import numpy as np

from attnlab.align.config import CSLS_K  # k = 10, as in Conneau et al. (kept beside JointConfig, which uses it too)

BATCH = 512  # query rows scored at once: (BATCH, n) float32 scores in memory


def _dots(queries, targets) -> np.ndarray:
    """queries (b, D) · targets (n, D)ᵀ as a dense (b, n) array, for dense or sparse rows."""
    sims = queries @ targets.T
    return sims.toarray() if hasattr(sims, "toarray") else sims


def mean_topk_cosine(queries: np.ndarray, targets: np.ndarray, k: int = CSLS_K,
                     batch: int = BATCH) -> np.ndarray:
    """r(q) = mean cosine of each query row to its k nearest target rows. (m, D), (n, D) -> (m,)."""
    m, n = queries.shape[0], targets.shape[0]
    k = min(k, n)
    out = np.empty(m, dtype=np.float32)
    if k == 0:
        out[:] = 0.0
        return out
    for start in range(0, m, batch):
        sims = _dots(queries[start:start + batch], targets)  # (b, n)
        top = np.partition(sims, n - k, axis=1)[:, n - k:]  # (b, k), unordered
        out[start:start + batch] = top.mean(axis=1)
    return out


def csls_penalties(src: np.ndarray, tgt: np.ndarray, k: int = CSLS_K,
                   batch: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """(r_T over src rows (n_src,), r_S over tgt rows (n_tgt,)) for CSLS between the two spaces."""
    return mean_topk_cosine(src, tgt, k, batch), mean_topk_cosine(tgt, src, k, batch)


def search(queries: np.ndarray, targets: np.ndarray, topn: int, *,
           query_penalty: np.ndarray | None = None, target_penalty: np.ndarray | None = None,
           batch: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    """The `topn` best targets for each query, best first: (indices (m, topn), scores (m, topn)).

    Without penalties the score is the cosine; with both (r of the queries (m,), r of the targets
    (n,), see `csls_penalties`) it is CSLS = 2 cos - r_query - r_target.
    """
    if (query_penalty is None) != (target_penalty is None):
        raise ValueError("CSLS needs both query_penalty and target_penalty (or neither, for cosine)")
    m, n = queries.shape[0], targets.shape[0]
    topn = min(topn, n)
    idx = np.empty((m, topn), dtype=np.int64)
    val = np.empty((m, topn), dtype=np.float32)
    if topn == 0:
        return idx, val
    for start in range(0, m, batch):
        scores = _dots(queries[start:start + batch], targets)  # (b, n)
        if query_penalty is not None:
            scores = 2 * scores - query_penalty[start:start + batch, None] - target_penalty[None, :]
        top = np.argpartition(-scores, topn - 1, axis=1)[:, :topn]  # (b, topn), unordered
        top_scores = np.take_along_axis(scores, top, axis=1)  # (b, topn)
        order = np.argsort(-top_scores, axis=1, kind="stable")  # (b, topn)
        idx[start:start + batch] = np.take_along_axis(top, order, axis=1)
        val[start:start + batch] = np.take_along_axis(top_scores, order, axis=1)
    return idx, val


def mutual_nearest(src: np.ndarray, tgt: np.ndarray, k: int = CSLS_K,
                   batch: int = BATCH) -> np.ndarray:
    """Pairs (i, j) where tgt[j] is the CSLS-nearest target of src[i] and src[i] the CSLS-nearest
    source of tgt[j]: (p, 2) int64, sorted by i. The refinement dictionary of Conneau et al."""
    r_src, r_tgt = csls_penalties(src, tgt, k, batch)
    fwd, _ = search(src, tgt, 1, query_penalty=r_src, target_penalty=r_tgt, batch=batch)  # (n_src, 1)
    bwd, _ = search(tgt, src, 1, query_penalty=r_tgt, target_penalty=r_src, batch=batch)  # (n_tgt, 1)
    i = np.arange(src.shape[0])
    keep = bwd[fwd[:, 0], 0] == i
    return np.stack([i[keep], fwd[keep, 0]], axis=1).astype(np.int64)  # (p, 2)
