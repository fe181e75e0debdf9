"""Sentences by meaning: a translation model's encoder as a sentence embedder, scored by retrieval.

Each sentence, Chinese or English, is read by the model's encoder through the source side of its
tokenizer (a joint zh+en vocabulary, the default, has pieces for both languages), and the encoder's
final states are pooled over the real tokens into one vector: their mean (as Sentence-BERT, Reimers
& Gurevych 2019) or their elementwise max (as LASER, Artetxe & Schwenk 2019, "Massively
Multilingual Sentence Embeddings for Zero-Shot Cross-Lingual Transfer and Beyond").

A sentence's translation is then looked for among every sentence of the other language in the same
split, by nearest neighbour as for words (attnlab/align/retrieval.py): cosine, or CSLS (Conneau et
al. 2018; close to the margin score of Artetxe & Schwenk). By default each language's mean vector is
removed first (unit, centre, unit: `procrustes.normalize_embeddings`, as the word spaces do), which
takes out what every sentence of one language shares. P@k counts a query right when one of its
translations (a Tatoeba sentence may have several) is among its k nearest; every query has one, so
P@k is over all queries. A model trained in one direction has never encoded the other language, which
is what a model trained in both directions (one encoder for both) is meant to change.

Knows the model only through `encode(src) -> Memory(states, src_mask)` (attnlab.model).

Shapes: B sentences in a batch, S pieces, D model width, N sentences.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from attnlab.align import procrustes, retrieval
from attnlab.align.config import POOLS
from attnlab.align.space import gold_sets, precision_at_k
from attnlab.errors import AttnlabError
from attnlab.word2vec.vectors import WordVectors

log = logging.getLogger(__name__)

METHODS = ("cosine", "csls")


def pool_states(states: torch.Tensor, mask: torch.Tensor, pool: str) -> torch.Tensor:
    """(B, S, D) states and (B, S) bool mask of real tokens -> (B, D): their mean or elementwise max."""
    m = mask[:, :, None]  # (B, S, 1)
    if pool == "mean":
        return (states * m).sum(dim=1) / m.sum(dim=1).clamp(min=1)
    if pool == "max":
        return states.masked_fill(~m, float("-inf")).amax(dim=1).nan_to_num(neginf=0.0)  # no token: zeros
    raise AttnlabError(f"unknown pooling {pool!r}; choose one of {', '.join(POOLS)}", field="pool")


@torch.inference_mode()
def sentence_vectors(model, tokenizer, texts: Sequence[str], pool: str = "mean", batch_size: int = 64) -> np.ndarray:
    """One pooled encoder vector per text, in the order given: (N, D) float32. Texts are encoded with
    the tokenizer's source side and read in batches of similar length (little padding)."""
    from attnlab.data.batching import pad_sources

    if batch_size < 1:
        raise AttnlabError(f"must be at least 1, got {batch_size}", field="batch_size")
    ids = tokenizer.encode_src(list(texts))
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), model.cfg.d_model), dtype=np.float32)  # (N, D)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        src = pad_sources([ids[i] for i in rows])  # (B, S)
        memory = model.encode(src)
        mask = memory.src_mask[:, 0, 0, :]  # (B, 1, 1, S) -> (B, S)
        out[rows] = pool_states(memory.states.float(), mask, pool).numpy()
    return out


def _unit(x: np.ndarray) -> tuple[np.ndarray, None]:
    """Unit rows, not centred: (N, D) -> ((N, D) float32, None)."""
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32), None


def retrieval_scores(zh: np.ndarray, en: np.ndarray, zh_sents: Sequence[str], en_sents: Sequence[str],
                     pairs: Sequence[tuple[str, str]], *, center: bool = True, ks: tuple[int, ...] = (1, 5, 10),
                     csls_k: int = retrieval.CSLS_K) -> dict:
    """P@k of finding each sentence's translation among the other language's sentences, both ways,
    cosine and CSLS: {"zh-en": {"queries": n, "cosine": {"p@1": ...}, "csls": {...}}, "en-zh": ...}.

    zh (Nz, D) and en (Ne, D) are the vectors of the distinct sentences `zh_sents` and `en_sents`;
    `pairs` are the (zh, en) translations among them."""
    prep = procrustes.normalize_embeddings if center else _unit
    return score_unit(prep(zh)[0], prep(en)[0], zh_sents, en_sents, pairs, ks=ks, csls_k=csls_k)


def score_unit(xz, xe, zh_sents: Sequence[str], en_sents: Sequence[str], pairs: Sequence[tuple[str, str]], *,
               ks: tuple[int, ...] = (1, 5, 10), csls_k: int = retrieval.CSLS_K) -> dict:
    """`retrieval_scores` on rows already of unit length: xz (Nz, D), xe (Ne, D), dense or scipy-sparse."""
    return scores_of(ranked_both_ways(xz, xe, zh_sents, en_sents, max(ks), csls_k), pairs, ks)


def ranked_both_ways(xz, xe, zh_sents: Sequence[str], en_sents: Sequence[str], topn: int,
                     csls_k: int = retrieval.CSLS_K) -> dict[str, dict[str, dict[str, list[str]]]]:
    """Each sentence's `topn` nearest sentences of the other language, best first, by each method:
    {"zh-en": {"cosine": {zh: [en, ...]}, "csls": {...}}, "en-zh": {...}}. Rows of unit length."""
    r_z, r_e = retrieval.csls_penalties(xz, xe, csls_k)  # (Nz,), (Ne,)
    out = {}
    for name, q, t, q_r, t_r, q_sents, t_sents in (("zh-en", xz, xe, r_z, r_e, zh_sents, en_sents),
                                                     ("en-zh", xe, xz, r_e, r_z, en_sents, zh_sents)):
        out[name] = {}
        for method in METHODS:
            penalties = {"query_penalty": q_r, "target_penalty": t_r} if method == "csls" else {}
            idx, _ = retrieval.search(q, t, topn, **penalties)  # (n, topn)
            out[name][method] = {s: [t_sents[j] for j in row] for s, row in zip(q_sents, idx)}
    return out


def scores_of(ranked: dict[str, dict[str, dict[str, list[str]]]], pairs: Sequence[tuple[str, str]],
              ks: tuple[int, ...] = (1, 5, 10)) -> dict:
    """P@k of `ranked_both_ways`'s lists against the translations in `pairs`, with the query and candidate counts."""
    forward, backward = gold_sets(list(pairs))
    out = {}
    for name, gold, candidates in (("zh-en", forward, backward), ("en-zh", backward, forward)):
        out[name] = {"queries": len(gold), "candidates": len(candidates)}
        for method, lists in ranked[name].items():
            out[name][method] = precision_at_k(gold, lists, ks)[1]
    return out


def distinct_sides(pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The distinct Chinese and the distinct English sentences of (Chinese, English) `pairs`, in order:
    what a retrieval searches among (at least two a side)."""
    forward, backward = gold_sets(list(pairs))
    zh, en = list(forward), list(backward)
    if len(zh) < 2 or len(en) < 2:
        raise AttnlabError(f"sentence retrieval needs at least 2 distinct sentences a side, got {len(zh)} Chinese "
                           f"and {len(en)} English")
    return zh, en


@dataclass
class SentenceSpace:
    """The distinct sentences of some (Chinese, English) pairs with one vector each; `src`, `tgt` and
    `langs` read like an AlignedSpace's, so the bilingual map (attnlab/viz/bilingual.py) draws it."""

    src: WordVectors  # (Nz, D) the distinct Chinese sentences, in first-seen order
    tgt: WordVectors  # (Ne, D) the distinct English sentences
    pairs: list[tuple[str, str]]  # the (zh, en) translations among them
    langs: tuple[str, str] = ("zh", "en")

    def scores(self, *, center: bool = True, ks: tuple[int, ...] = (1, 5, 10)) -> dict:
        """Retrieval P@k both ways, cosine and CSLS (`retrieval_scores`)."""
        return retrieval_scores(self.src.vectors, self.tgt.vectors, self.src.words, self.tgt.words, self.pairs,
                                center=center, ks=ks)

    def prepared(self, center: bool = True) -> "SentenceSpace":
        """The same sentences with the vectors the search compares: unit rows, each language centred."""
        prep = procrustes.normalize_embeddings if center else _unit
        return SentenceSpace(WordVectors(self.src.words, prep(self.src.vectors)[0]),
                             WordVectors(self.tgt.words, prep(self.tgt.vectors)[0]), self.pairs, self.langs)


def encode_pairs(model, tokenizer, pairs: Sequence[tuple[str, str]], *, pool: str = "mean",
                 batch_size: int = 64) -> SentenceSpace:
    """Each distinct sentence of (Chinese, English) `pairs` encoded once and pooled (`sentence_vectors`)."""
    if pool not in POOLS:
        raise AttnlabError(f"unknown pooling {pool!r}; choose one of {', '.join(POOLS)}", field="pool")
    if not tokenizer.joint:
        raise AttnlabError("sentence retrieval reads both languages with the encoder, which needs a joint zh+en "
                           "vocabulary (tokenizer.joint = true); this model has one vocabulary per side")
    zh_sents, en_sents = distinct_sides(pairs)
    log.info("encoding %d Chinese and %d English sentences", len(zh_sents), len(en_sents))
    zh = sentence_vectors(model, tokenizer, zh_sents, pool, batch_size)  # (Nz, D)
    en = sentence_vectors(model, tokenizer, en_sents, pool, batch_size)  # (Ne, D)
    return SentenceSpace(WordVectors(zh_sents, zh), WordVectors(en_sents, en), list(pairs))


def short_pairs(pairs: Sequence[tuple[str, str]], n: int, max_zh: int = 8, max_en: int = 24) -> list[tuple[str, str]]:
    """The first n pairs, in order, short enough to label a map: at most `max_zh` Chinese and
    `max_en` English characters, each sentence used once."""
    out, seen = [], set()
    for zh, en in pairs:
        if len(zh) <= max_zh and len(en) <= max_en and zh not in seen and en not in seen:
            out.append((zh, en))
            seen.update((zh, en))
            if len(out) == n:
                break
    return out
