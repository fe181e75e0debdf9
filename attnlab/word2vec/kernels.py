"""The compiled inner loops of Word2Vec: one call trains a block of sentences in place.

Owns: CBOW and skip-gram updates with negative sampling and/or hierarchical softmax, frequent-word
subsampling, the dynamic window and the linearly decaying learning rate, as word2vec.c (Mikolov
2013) does them: the same random-number generator (the LCG `r = r·25214903917 + 11`), the sigmoid
read from a table clipped at ±6 (a saturated wrong answer still gets the full gradient, as in the C
tool; gensim skips it). Noise words come from the unigram^0.75 distribution through an alias table
(one column, one comparison) instead of gensim's binary search of a cumulative table: about 10 %
faster for skip-gram, same distribution. Compiled by numba with the GIL released, so several
Python threads update the shared matrices at once without locks ("Hogwild", as the C tool does).
Every loop over the D vector entries is a plain loop that LLVM vectorises.

Legend: V vocabulary size, D vector size, N words in the block.
"""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_EXP = 6.0  # sigmoid(x) is taken as 0 or 1 beyond ±MAX_EXP (as word2vec.c)
EXP_TABLE_SIZE = 1000


def sigmoid_tables() -> tuple[np.ndarray, np.ndarray]:
    """(sigmoid, log-sigmoid) sampled at EXP_TABLE_SIZE points over [-MAX_EXP, MAX_EXP)."""
    x = (np.arange(EXP_TABLE_SIZE, dtype=np.float64) / EXP_TABLE_SIZE * 2 - 1) * MAX_EXP
    sig = 1.0 / (1.0 + np.exp(-x))
    return sig.astype(np.float32), np.log(sig).astype(np.float32)


@njit(inline="always", fastmath=True)
def _dot(a, ia, b, ib, d):
    s = np.float32(0.0)
    for k in range(d):
        s += a[ia, k] * b[ib, k]
    return s


@njit(inline="always", fastmath=True)
def _axpy(g, src, isrc, dst, idst, d):  # dst[idst] += g · src[isrc]
    for k in range(d):
        dst[idst, k] += g * src[isrc, k]


@njit(inline="always")
def _next(r):
    return r * np.uint64(25214903917) + np.uint64(11)


@njit(inline="always")
def _sigmoid_grad(f, label, alpha, exp_table, log_table):
    """(gradient scale g, loss) for logit f and label in {0, 1}; zero loss beyond the table."""
    if f >= MAX_EXP:
        return (label - 1.0) * alpha, (0.0 if label == 1.0 else MAX_EXP)
    if f <= -MAX_EXP:
        return label * alpha, (MAX_EXP if label == 1.0 else 0.0)
    i = int((f + MAX_EXP) * (EXP_TABLE_SIZE / MAX_EXP / 2.0))
    s = exp_table[i]
    if label == 1.0:
        return (1.0 - s) * alpha, -log_table[i]
    return -s * alpha, -log_table[EXP_TABLE_SIZE - 1 - i]


@njit(inline="always")
def _draw(alias_prob, alias_idx, r):
    """One noise word from the alias table; returns (word, r)."""
    r = _next(r)
    col = ((r >> np.uint64(32)) * np.uint64(alias_prob.shape[0])) >> np.uint64(32)
    r = _next(r)
    other = np.int64(alias_idx[col])
    own = np.int64((r >> np.uint64(32)) < alias_prob[col])  # 1: keep the column's own word (no branch)
    return other + own * (np.int64(col) - other), r


@njit(inline="always", fastmath=True)
def _train_output(l1, il1, target_word, syn1neg, syn1, work, alias_prob, alias_idx, codes, points, code_lens,
                  negative, hs, alpha, exp_table, log_table, d, r):
    """Score hidden vector l1[il1] against the output layer for `target_word`; accumulate the
    input-side gradient into work[0] and update the output vectors. Returns (loss, pairs, r)."""
    loss = 0.0
    pairs = 0
    if hs:
        for c in range(code_lens[target_word]):
            p = points[target_word, c]
            f = _dot(l1, il1, syn1, p, d)
            if f <= -MAX_EXP or f >= MAX_EXP:
                continue
            label = 1.0 - codes[target_word, c]
            g, lo = _sigmoid_grad(f, label, alpha, exp_table, log_table)
            loss += lo
            pairs += 1
            _axpy(np.float32(g), syn1, p, work, 0, d)
            _axpy(np.float32(g), l1, il1, syn1, p, d)
    if negative > 0:
        for n in range(negative + 1):
            if n == 0:
                target = np.int64(target_word)
                label = 1.0
            else:
                target, r = _draw(alias_prob, alias_idx, r)
                if target == target_word:
                    continue
                label = 0.0
            f = _dot(l1, il1, syn1neg, target, d)
            g, lo = _sigmoid_grad(f, label, alpha, exp_table, log_table)
            loss += lo
            pairs += 1
            _axpy(np.float32(g), syn1neg, target, work, 0, d)
            _axpy(np.float32(g), l1, il1, syn1neg, target, d)
    return loss, pairs, r


@njit(nogil=True, fastmath=True, cache=True)
def train_block(ids, starts, syn0, syn1neg, syn1, keep, alias_prob, alias_idx, codes, points, code_lens,
                cbow, cbow_mean, window, negative, hs, alpha0, min_alpha, progress0, progress_per_word,
                exp_table, log_table, state, stats):
    """Train the sentences ids[starts[s]:starts[s+1]] for s in range(len(starts) - 1), in place.

    ids (N,) int32 word ids; starts (S+1,) int64 sentence offsets into ids; syn0, syn1neg, syn1 (V, D)
    float32 input, noise-output and tree-output vectors; keep (V,) uint32 subsampling thresholds
    (keep a word when keep >= 32 random bits); alias_prob (V,) uint32 and alias_idx (V,) int32 the
alias table of the unigram^0.75 noise distribution.
    The learning rate at a word is alpha0 - (alpha0 - min_alpha) · (progress0 + n · progress_per_word)
    after n words of this block, floored at min_alpha. state[0] holds the random state (uint64), in
    and out. stats (3,) float64 += (loss sum, scored pairs, words kept after subsampling).
    """
    d = syn0.shape[1]
    r = state[0]
    work = np.zeros((1, d), dtype=np.float32)  # gradient for the input side
    neu1 = np.zeros((1, d), dtype=np.float32)  # CBOW hidden vector
    sen = np.empty(ids.shape[0], dtype=np.int32)
    loss = 0.0
    pairs = 0
    kept_total = 0
    seen = 0
    for s in range(starts.shape[0] - 1):
        progress = progress0 + seen * progress_per_word
        alpha = alpha0 - (alpha0 - min_alpha) * progress
        if alpha < min_alpha:
            alpha = min_alpha
        n = 0
        for j in range(starts[s], starts[s + 1]):
            w = ids[j]
            r = _next(r)
            if keep[w] < ((r >> np.uint64(16)) & np.uint64(0xFFFFFFFF)):
                continue
            sen[n] = w
            n += 1
        seen += starts[s + 1] - starts[s]
        kept_total += n
        for i in range(n):
            r = _next(r)
            b = int((r >> np.uint64(16)) % np.uint64(window))  # the window shrinks by b: 1..window
            lo = max(0, i - window + b)
            hi = min(n, i + window + 1 - b)
            word = sen[i]
            if cbow:
                for k in range(d):
                    neu1[0, k] = 0.0
                count = 0
                for j in range(lo, hi):
                    if j != i:
                        _axpy(np.float32(1.0), syn0, sen[j], neu1, 0, d)
                        count += 1
                if count == 0:
                    continue
                if cbow_mean:
                    inv = np.float32(1.0 / count)
                    for k in range(d):
                        neu1[0, k] *= inv
                for k in range(d):
                    work[0, k] = 0.0
                lo_, pa, r = _train_output(neu1, 0, word, syn1neg, syn1, work, alias_prob, alias_idx, codes, points, code_lens,
                                           negative, hs, alpha, exp_table, log_table, d, r)
                loss += lo_
                pairs += pa
                if not cbow_mean:
                    inv = np.float32(1.0 / count)
                    for k in range(d):
                        work[0, k] *= inv
                for j in range(lo, hi):
                    if j != i:
                        _axpy(np.float32(1.0), work, 0, syn0, sen[j], d)
            else:
                for j in range(lo, hi):
                    if j == i:
                        continue
                    ctx = sen[j]
                    for k in range(d):
                        work[0, k] = 0.0
                    lo_, pa, r = _train_output(syn0, ctx, word, syn1neg, syn1, work, alias_prob, alias_idx, codes, points, code_lens,
                                               negative, hs, alpha, exp_table, log_table, d, r)
                    loss += lo_
                    pairs += pa
                    _axpy(np.float32(1.0), work, 0, syn0, ctx, d)
    state[0] = r
    stats[0] += loss
    stats[1] += pairs
    stats[2] += kept_total
    return seen
