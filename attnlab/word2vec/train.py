"""Training Word2Vec: threads, learning-rate schedule, progress, and the resulting vectors.

Owns: initialising the matrices (word2vec.c: input vectors uniform in ±0.5/D, output vectors zero),
cutting the corpus into blocks of about BLOCK_WORDS words that the threads take in turn (thread t
every T-th block, so the threads train on nearby text at the same time, as gensim's job queue does:
giving each thread one contiguous half of the corpus measurably hurt the vectors), calling the
compiled kernel (`kernels.train_block`) once per block so a progress bar can show words/s and loss,
and returning `WordVectors`. The kernel releases the GIL, so the threads really run at once
and update the shared matrices without locks, as the C tool does; with one thread and a seed the
result is deterministic.

Legend: V vocabulary size, D vector size, N corpus words.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from attnlab.errors import AttnlabError
from attnlab.word2vec import kernels
from attnlab.word2vec.config import Word2VecConfig
from attnlab.word2vec.corpus import EncodedCorpus, encode, iter_lines
from attnlab.word2vec.sampling import alias_table, huffman_tree, keep_thresholds
from attnlab.word2vec.vectors import WordVectors

log = logging.getLogger(__name__)
BLOCK_WORDS = 10_000  # words per kernel call; threads take alternate blocks (as gensim's 10k-word jobs)


@dataclass
class TrainStats:
    """What one training run did."""

    raw_words: int  # corpus words read
    corpus_words: int  # words kept after min_count, per epoch
    trained_words: int  # corpus_words · epochs
    effective_words: int  # words left after subsampling, over all epochs
    seconds: float  # training time (excludes reading the corpus)
    read_seconds: float  # reading + vocabulary + encoding
    loss: float  # mean loss per scored pair over the last epoch

    @property
    def words_per_second(self) -> float:
        return self.trained_words / max(self.seconds, 1e-9)


def load_corpus(corpus: Path | Iterable[list[str]], cfg: Word2VecConfig, segment: str | None = None,
                show_progress: bool | None = None) -> EncodedCorpus:
    """Encode a corpus file (or an iterable of token lists) with cfg's min_count / max_vocab."""
    if isinstance(corpus, (str, Path)):
        segmenter = None
        if segment == "jieba":
            from attnlab.word2vec.corpus import jieba_segmenter

            segmenter = jieba_segmenter()
        elif segment not in (None, "none"):
            raise AttnlabError(f"unknown segmenter {segment!r} (choose jieba or none)")
        sentences = iter_lines(Path(corpus), cfg.max_sentence_length, segmenter)
    else:
        sentences = (list(s)[i:i + cfg.max_sentence_length] for s in corpus
                     for i in range(0, max(len(s), 1), cfg.max_sentence_length))
    bar = tqdm(desc="reading", unit=" words", unit_scale=True, disable=not _show(show_progress), leave=False)
    try:
        return encode(sentences, cfg.min_count, cfg.max_vocab, progress=bar.update)
    finally:
        bar.close()


def _show(show_progress: bool | None) -> bool:
    return sys.stderr.isatty() if show_progress is None else show_progress


def _blocks(starts: np.ndarray, s0: int, s1: int) -> list[tuple[int, int]]:
    """Split sentences [s0, s1) into ranges of about BLOCK_WORDS words (at least one sentence)."""
    out = []
    s = s0
    while s < s1:
        e = int(np.searchsorted(starts, starts[s] + BLOCK_WORDS, side="left"))
        e = min(max(e, s + 1), s1)
        out.append((s, e))
        s = e
    return out


class _Model:
    """The matrices and tables the kernel reads and writes."""

    def __init__(self, corpus: EncodedCorpus, cfg: Word2VecConfig) -> None:
        v, d = len(corpus.words), cfg.dim
        rng = np.random.default_rng(cfg.seed)
        self.syn0 = ((rng.random((v, d), dtype=np.float32) - 0.5) / d).astype(np.float32)  # (V, D)
        self.syn1neg = np.zeros((v if cfg.negative else 1, d), dtype=np.float32)  # (V, D) noise outputs
        self.syn1 = np.zeros((max(v - 1, 1) if cfg.hs else 1, d), dtype=np.float32)  # (V-1, D) tree nodes
        self.keep = keep_thresholds(corpus.counts, cfg.sample)
        self.alias_prob, self.alias_idx = alias_table(corpus.counts, cfg.ns_exponent)
        if cfg.hs:
            self.codes, self.points, self.code_lens = huffman_tree(corpus.counts)
        else:
            self.codes = np.zeros((1, 1), np.uint8)
            self.points = np.zeros((1, 1), np.int32)
            self.code_lens = np.zeros(1, np.int32)
        self.exp_table, self.log_table = kernels.sigmoid_tables()


def train(corpus: Path | Iterable[list[str]] | EncodedCorpus, cfg: Word2VecConfig, *, segment: str | None = None,
          show_progress: bool | None = None) -> tuple[WordVectors, TrainStats]:
    """Train Word2Vec on a corpus file, token lists, or an already encoded corpus."""
    t0 = time.perf_counter()
    enc = corpus if isinstance(corpus, EncodedCorpus) else load_corpus(corpus, cfg, segment, show_progress)
    read_seconds = time.perf_counter() - t0
    if enc.n_words == 0:
        raise AttnlabError("no words left to train on")
    model = _Model(enc, cfg)
    blocks = _blocks(enc.starts, 0, len(enc.starts) - 1)
    shards = [blocks[t::cfg.threads] for t in range(cfg.threads)]  # thread t takes every T-th block
    shard_words = [max(sum(int(enc.starts[b] - enc.starts[a]) for a, b in bl), 1) for bl in shards]
    alpha0 = cfg.start_alpha
    min_alpha = alpha0 * cfg.min_alpha_ratio
    stats = np.zeros((cfg.threads, 3), dtype=np.float64)  # per thread: loss, pairs, kept words
    done = np.zeros(cfg.threads, dtype=np.int64)
    errors: list[BaseException] = []
    kargs = (model.syn0, model.syn1neg, model.syn1, model.keep, model.alias_prob, model.alias_idx, model.codes,
             model.points, model.code_lens, cfg.arch == "cbow", cfg.cbow_mean, cfg.window, cfg.negative, cfg.hs)

    def worker(t: int, epoch: int, state: np.ndarray) -> None:
        try:
            per_word = 1.0 / (shard_words[t] * cfg.epochs)
            progress = epoch / cfg.epochs
            for s0, s1 in shards[t]:
                ids = enc.ids[enc.starts[s0]:enc.starts[s1]]
                starts = enc.starts[s0:s1 + 1] - enc.starts[s0]
                seen = kernels.train_block(ids, starts, *kargs, alpha0, min_alpha, progress, per_word,
                                           model.exp_table, model.log_table, state, stats[t])
                progress += seen * per_word
                done[t] += seen
        except BaseException as e:  # surfaced by the main thread
            errors.append(e)

    states = [np.array([cfg.seed * 1_000_003 + t], dtype=np.uint64) for t in range(cfg.threads)]
    total = enc.n_words * cfg.epochs
    _warm_up(model, kargs)
    bar = tqdm(total=total, unit=" words", unit_scale=True, disable=not _show(show_progress), desc=cfg.arch)
    start = time.perf_counter()
    last_loss = float("nan")
    for epoch in range(cfg.epochs):
        stats[:, :2] = 0.0
        threads = [threading.Thread(target=worker, args=(t, epoch, states[t]), daemon=True) for t in range(cfg.threads)]
        for th in threads:
            th.start()
        while any(th.is_alive() for th in threads):
            threads[0].join(timeout=0.25)
            _update_bar(bar, done, stats, start)
        for th in threads:
            th.join()
        if errors:
            raise errors[0]
        last_loss = float(stats[:, 0].sum() / max(stats[:, 1].sum(), 1.0))
        _update_bar(bar, done, stats, start)
        log.info("epoch %d/%d: loss %.4f, %.0f words/s", epoch + 1, cfg.epochs, last_loss,
                 done.sum() / max(time.perf_counter() - start, 1e-9))
    seconds = time.perf_counter() - start
    bar.close()
    vectors = WordVectors(enc.words, model.syn0, enc.counts)
    return vectors, TrainStats(enc.raw_words, enc.n_words, total, int(stats[:, 2].sum()), seconds,
                               read_seconds, last_loss)


def _update_bar(bar: tqdm, done: np.ndarray, stats: np.ndarray, start: float) -> None:
    if bar.disable:
        return
    bar.update(int(done.sum()) - bar.n)
    rate = done.sum() / max(time.perf_counter() - start, 1e-9)
    bar.set_postfix(loss=f"{stats[:, 0].sum() / max(stats[:, 1].sum(), 1.0):.4f}", wps=f"{rate / 1e3:.0f}k", refresh=False)


def _warm_up(model: _Model, kargs: tuple) -> None:
    """Compile (or load from numba's cache) the kernel for these argument types on a 2-word
    sentence with a zero learning rate, so compile time never counts as training time."""
    ids = np.zeros(2, dtype=np.int32)
    starts = np.array([0, 2], dtype=np.int64)
    kernels.train_block(ids, starts, *kargs, 0.0, 0.0, 0.0, 0.0, model.exp_table, model.log_table,
                        np.array([1], dtype=np.uint64), np.zeros(3))
