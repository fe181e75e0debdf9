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
the sparse rows. P@k is scored by `sentences.score_unit` exactly as for the pooled vectors.

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

from attnlab.align import retrieval
from attnlab.align.sentences import score_unit
from attnlab.align.space import gold_sets, precision_at_k
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
    out = score_unit(xz, xe, zh_sents, en_sents, pairs, ks=ks)
    if rerank:
        reranked = rerank_by_model(translator, xz, xe, zh_sents, en_sents, rerank, max(ks))
        for name, gold in (("zh-en", forward), ("en-zh", backward)):
            out[name]["csls+model"] = precision_at_k(gold, reranked[name], ks)[1]
        out["rerank"] = rerank
    return {**out, "compared_in": tgt_lang}


def rerank_by_model(translator, xz, xe, zh_sents: Sequence[str], en_sents: Sequence[str], depth: int,
                    topn: int) -> dict[str, dict[str, list[str]]]:
    """Per direction, per query, its `topn` CSLS candidates with the first `depth` re-ordered by the model's
    log-probability per token of the pair (source side = the model's source language)."""
    r_z, r_e = retrieval.csls_penalties(xz, xe)  # (Nz,), (Ne,)
    to_en = translator.cfg.src_lang == "zh"
    out = {}
    for name, q, t, q_r, t_r, q_sents, t_sents in (("zh-en", xz, xe, r_z, r_e, zh_sents, en_sents),
                                                     ("en-zh", xe, xz, r_e, r_z, en_sents, zh_sents)):
        idx, _ = retrieval.search(q, t, max(topn, depth), query_penalty=q_r, target_penalty=t_r)  # (n, k)
        ranked = [[t_sents[j] for j in row] for row in idx]
        # (zh, en) for each query and each of its first `depth` candidates, in the model's direction
        zh_en = [(qs, c) if name == "zh-en" else (c, qs) for qs, row in zip(q_sents, ranked) for c in row[:depth]]
        model_pairs = zh_en if to_en else [(en, zh) for zh, en in zh_en]
        scored = translator.score(model_pairs)
        per_token = np.array([s.log_prob / len(s.tokens) if s is not None else -np.inf for s in scored])
        per_token = per_token.reshape(len(q_sents), -1)  # (n, depth)
        out[name] = {}
        for qs, row, scores in zip(q_sents, ranked, per_token):
            head = [row[i] for i in np.argsort(-scores, kind="stable")]
            out[name][qs] = head + row[len(head):topn]
    return out
