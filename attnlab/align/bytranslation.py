"""Sentences found through their translation: translate one language, compare within the other.

The pooled-encoder search (attnlab/align/sentences.py) asks whether a sentence and its translation sit
close in the encoder's space. This module asks the model the other way it knows meaning: it translates
every sentence of its source language (beam search, the run's decode settings), and compares each
machine translation with the sentences of the target language as text, by the cosine of TF-IDF vectors
of character n-grams (scikit-learn's `TfidfVectorizer`: n-grams within words for English, any run of
characters for Chinese, which has no spaces). A Chinese sentence's vector is thus its English
translation's, and the two languages meet in one space of English (or Chinese) n-grams. The meaning
crosses languages through the decoder, not through a shared latent space, so this is a baseline for
the latent-space methods rather than one of them; it costs one translation per sentence.

The vectorizer is fitted on the split's own target-language text (references and translations, no
labels); rows come out unit length, so cosine and CSLS (attnlab/align/retrieval.py) apply unchanged to
the sparse rows. P@k is scored by `sentences.scores_of` exactly as for the pooled vectors.

With `rerank = k`, the model then reads each query's k best candidates by CSLS once more, as a pair,
scoring log P(target | source) by teacher forcing (per target token, so that long candidates are not
penalised for their length), and the k are re-ordered by that score: method "csls+model". The model's
probability of a translation judges meaning and word choice where shared n-grams cannot ("I don't know
who she is." / "I had no idea who she was."); P@k for k beyond the reranked depth is CSLS's.

Shapes: Nz distinct Chinese sentences, Ne distinct English sentences, F n-gram features (sparse).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from attnlab.align.sentences import ranked_both_ways, scores_of
from attnlab.align.space import gold_sets
from attnlab.errors import AttnlabError

log = logging.getLogger(__name__)

NGRAMS = {"en": ("char_wb", (1, 3)), "zh": ("char", (1, 3))}  # (analyzer, n-gram range); English chosen on dev (BENCHMARKS.md)


def vectorizer(lang: str):
    """A TF-IDF vectorizer of the language's character n-grams (sublinear tf, unit rows)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    analyzer, ngram_range = NGRAMS[lang]
    return TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, sublinear_tf=True, lowercase=True)


def translation_scores(translator, pairs: Sequence[tuple[str, str]], *, beam: int | None = None, rerank: int = 0,
                       ks: tuple[int, ...] = (1, 5, 10)) -> dict:
    """P@k of finding each sentence's translation, both ways, cosine and CSLS (and "csls+model" with
    `rerank`), with the source side represented by its machine translation:
    {"zh-en": {...}, "en-zh": {...}, "compared_in": "en"|"zh"}.

    `translator` translates the model's direction (an attnlab engine); `pairs` are (Chinese, English)."""
    if rerank < 0:
        raise AttnlabError(f"must be >= 0, got {rerank}", field="rerank")
    forward, backward = gold_sets(list(pairs))
    zh_sents, en_sents = list(forward), list(backward)
    if len(zh_sents) < 2 or len(en_sents) < 2:
        raise AttnlabError(f"sentence retrieval needs at least 2 distinct sentences a side, got "
                           f"{len(zh_sents)} Chinese and {len(en_sents)} English")
    src_lang, tgt_lang = translator.cfg.src_lang, translator.cfg.tgt_lang
    sources, targets = (zh_sents, en_sents) if src_lang == "zh" else (en_sents, zh_sents)
    log.info("translating %d %s sentences (beam %s)", len(sources), src_lang, beam or translator.cfg.decode.beam)
    translations = translator.translate(sources, beam)
    tfidf = vectorizer(tgt_lang).fit([*targets, *translations])
    x_src, x_tgt = tfidf.transform(translations), tfidf.transform(targets)  # (N_src, F), (N_tgt, F) unit rows
    xz, xe = (x_src, x_tgt) if src_lang == "zh" else (x_tgt, x_src)
    ranked = ranked_both_ways(xz, xe, zh_sents, en_sents, max(*ks, rerank))
    if rerank:
        for name in ranked:
            ranked[name]["csls+model"] = rerank_by_model(translator, ranked[name]["csls"], name, rerank)
    return {**scores_of(ranked, pairs, ks), **({"rerank": rerank} if rerank else {}), "compared_in": tgt_lang}


def rerank_by_model(translator, ranked: dict[str, list[str]], name: str, depth: int) -> dict[str, list[str]]:
    """Each query's candidates (direction `name`, "zh-en" or "en-zh") with the first `depth` re-ordered by the
    model's log-probability per token of the pair, read in the model's own direction."""
    to_en = translator.cfg.src_lang == "zh"
    queries = list(ranked)
    zh_en = [(q, c) if name == "zh-en" else (c, q) for q in queries for c in ranked[q][:depth]]
    scored = translator.score(zh_en if to_en else [(en, zh) for zh, en in zh_en])
    per_token = iter([s.log_prob / len(s.tokens) if s is not None else -np.inf for s in scored])
    out = {}
    for q in queries:
        head = ranked[q][:depth]
        scores = np.array([next(per_token) for _ in head])  # (depth,)
        out[q] = [head[i] for i in np.argsort(-scores, kind="stable")] + ranked[q][depth:]
    return out
