"""The tables Word2Vec samples from: subsampling thresholds, the noise distribution, the Huffman tree.

Owns the three pieces of word2vec.c that depend only on the word counts:
- keep probabilities for frequent-word subsampling, the C tool's formula
  p_keep(w) = (sqrt(c_w / (t·T)) + 1) · (t·T) / c_w   (T total words, t the `sample` threshold),
  stored as 32-bit thresholds (keep when a random 32-bit integer is below it), as gensim does;
- the noise distribution P(w) ∝ c_w^0.75, as an alias table (Walker 1977; Vose 1991) so a draw costs
  one random column and one comparison instead of a binary search (the cumulative table that
  gensim bisects is kept as the readable reference and tested equal in distribution);
- the Huffman tree for hierarchical softmax: per word its binary code and the inner nodes on its path.

Legend: V vocabulary size, L longest code.
"""

from __future__ import annotations

import heapq

import numpy as np

CUM_TABLE_DOMAIN = 2**31 - 1  # the cumulative table ends at this value (as gensim's)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """(V,) float64 probability of keeping each occurrence of a word; all ones when sample == 0."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    p = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    return np.minimum(p, 1.0)


def keep_thresholds(counts: np.ndarray, sample: float) -> np.ndarray:
    """(V,) uint32: an occurrence is kept when a uniform 32-bit integer is <= this."""
    p = keep_probabilities(counts, sample)
    return np.minimum(np.round(p * 2**32), 2**32 - 1).astype(np.uint32)


def noise_distribution(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """(V,) float64 P(w) ∝ count^exponent."""
    weights = np.asarray(counts, dtype=np.float64) ** exponent
    return weights / weights.sum()


def cumulative_table(counts: np.ndarray, exponent: float = 0.75) -> np.ndarray:
    """(V,) int64 increasing, last entry CUM_TABLE_DOMAIN: word w is drawn for x in
    [cum[w-1], cum[w]) with x uniform in [0, CUM_TABLE_DOMAIN), i.e. with probability ≈ P(w)."""
    cum = np.round(np.cumsum(noise_distribution(counts, exponent)) * CUM_TABLE_DOMAIN).astype(np.int64)
    cum[-1] = CUM_TABLE_DOMAIN
    return cum


def alias_table(counts: np.ndarray, exponent: float = 0.75) -> tuple[np.ndarray, np.ndarray]:
    """prob (V,) uint32 and alias (V,) int32 for Walker's alias method, built by Vose's algorithm.

    Draw: pick a column i uniformly, then keep i if a uniform 32-bit integer is below prob[i],
    else take alias[i]. Each column carries 1/V of the probability mass split between i and
    alias[i], so P(w) = (prob[w] + Σ_{i: alias[i]=w} (2^32 - prob[i])) / (V · 2^32)."""
    p = noise_distribution(counts, exponent) * len(counts)  # (V,) mean 1
    prob = np.ones(len(p), dtype=np.float64)
    alias = np.arange(len(p), dtype=np.int32)
    small = [i for i in range(len(p)) if p[i] < 1.0]
    large = [i for i in range(len(p)) if p[i] >= 1.0]
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s], alias[s] = p[s], g  # column s: s with p[s], the rest goes to g
        p[g] -= 1.0 - p[s]
        (small if p[g] < 1.0 else large).append(g)
    # whatever is left is 1 up to rounding: those columns keep their own word
    return np.minimum(np.round(prob * 2**32), 2**32 - 1).astype(np.uint32), alias


def alias_distribution(prob: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """(V,) float64: the exact distribution an alias table draws from."""
    keep = prob.astype(np.float64) / 2**32
    out = keep.copy()
    np.add.at(out, alias, 1.0 - keep)
    return out / len(prob)


def huffman_tree(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """codes (V, L) uint8, points (V, L) int32, lengths (V,) int32.

    Word w's path from the root visits inner nodes points[w, :lengths[w]] (ids 0..V-2, the rows of
    the tree's output matrix) and turns codes[w, i] (0 left, 1 right) at each. Frequent words get
    short codes. Ties are broken by insertion order, so the tree is deterministic."""
    v = len(counts)
    if v < 2:
        return np.zeros((v, 1), np.uint8), np.zeros((v, 1), np.int32), np.zeros(v, np.int32)
    heap = [(int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    parent = np.zeros(2 * v - 1, dtype=np.int64)
    branch = np.zeros(2 * v - 1, dtype=np.uint8)
    nxt = v
    while len(heap) > 1:
        c1, a = heapq.heappop(heap)
        c2, b = heapq.heappop(heap)
        parent[a], parent[b] = nxt, nxt
        branch[b] = 1
        heapq.heappush(heap, (c1 + c2, nxt))
        nxt += 1
    root = nxt - 1
    paths = []
    for w in range(v):
        code, point = [], []
        node = w
        while node != root:
            code.append(branch[node])
            point.append(parent[node] - v)  # inner node ids start at 0
            node = parent[node]
        paths.append((code[::-1], point[::-1]))
    longest = max(len(c) for c, _ in paths)
    codes = np.zeros((v, longest), dtype=np.uint8)
    points = np.zeros((v, longest), dtype=np.int32)
    lengths = np.zeros(v, dtype=np.int32)
    for w, (code, point) in enumerate(paths):
        codes[w, :len(code)] = code
        points[w, :len(point)] = point
        lengths[w] = len(code)
    return codes, points, lengths
