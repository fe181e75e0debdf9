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
scoring log P(target | source) by teacher forcing, and the k are re-ordered: by that log-probability per
target token (method "csls+model"), or by the posterior P(source | target) among the sources competing
for that target (method "csls+posterior", `rerank_by_model`). The model's probability of a translation
judges meaning and word choice where shared n-grams cannot ("I don't know who she is." / "I had no idea
who she was."); P@k for k beyond the reranked depth is CSLS's.

Shapes: Nz distinct Chinese sentences, Ne distinct English sentences, F n-gram features (sparse).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from attnlab.align.sentences import distinct_sides, ranked_both_ways, scores_of
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
    zh_sents, en_sents = distinct_sides(pairs)
    src_lang, tgt_lang = translator.cfg.src_lang, translator.cfg.tgt_lang
    sources, targets = (zh_sents, en_sents) if src_lang == "zh" else (en_sents, zh_sents)
    log.info("translating %d %s sentences (beam %s)", len(sources), src_lang, beam or translator.cfg.decode.beam)
    translations = translator.translate(sources, beam)
    tfidf = vectorizer(tgt_lang).fit([*targets, *translations])
    x_src, x_tgt = tfidf.transform(translations), tfidf.transform(targets)  # (N_src, F), (N_tgt, F) unit rows
    xz, xe = (x_src, x_tgt) if src_lang == "zh" else (x_tgt, x_src)
    ranked = ranked_both_ways(xz, xe, zh_sents, en_sents, max(*ks, rerank))
    if rerank:
        for name, methods in rerank_by_model(translator, ranked, rerank).items():
            ranked[name].update(methods)
    return {**scores_of(ranked, pairs, ks), **({"rerank": rerank} if rerank else {}), "compared_in": tgt_lang}


def rerank_by_model(translator, ranked: dict, depth: int) -> dict[str, dict[str, dict[str, list[str]]]]:
    """Both directions' CSLS lists with each query's first `depth` candidates re-ordered by the model, two ways:
    {"zh-en": {"csls+model": {query: [...]}, "csls+posterior": {...}}, "en-zh": {...}}.

    Every pair either list puts in its first `depth` is scored once, as log P(target | source) in the model's
    own direction. "csls+model" orders by that log-probability per target token. "csls+posterior" orders by
    log P(source | target) among the sources competing for that target: the pair's probability over the sum
    of the target's own `depth` best candidates' (and the pair's), log P(t|s) - logsumexp_s' log P(t|s'), a
    probability in [0, 1] whatever the target's length or how likely it is from any source. Where the query is
    the target (the model's target language), the denominator is the same for all its candidates and both
    orders agree; where the query is the source, the per-token score compares probabilities of different
    sentences, and the posterior removes what the sentences themselves weigh."""
    src_lang, tgt_lang = translator.cfg.src_lang, translator.cfg.tgt_lang
    forward, backward = f"{src_lang}-{tgt_lang}", f"{tgt_lang}-{src_lang}"  # queries: model's sources / targets
    heads = {name: {q: c[:depth] for q, c in ranked[name]["csls"].items()} for name in (forward, backward)}
    as_model = {forward: lambda q, c: (q, c), backward: lambda q, c: (c, q)}  # -> (source, target)
    wanted = list(dict.fromkeys(as_model[name](q, c) for name in heads for q, cs in heads[name].items() for c in cs))
    scored = translator.score(wanted)
    logp = {pair: (s.log_prob, len(s.tokens)) if s is not None else (-np.inf, 1) for pair, s in zip(wanted, scored)}
    rivals = heads[backward]  # target -> the sources competing for it

    def per_token(src: str, tgt: str) -> float:
        lp, n = logp[(src, tgt)]
        return lp / max(n, 1)

    def posterior(src: str, tgt: str) -> float:
        competing = np.array([logp[(s, tgt)][0] for s in dict.fromkeys([src, *rivals[tgt]])])
        top = competing.max()
        if not np.isfinite(top):
            return -np.inf
        return logp[(src, tgt)][0] - (top + np.log(np.exp(competing - top).sum()))

    out: dict[str, dict[str, dict[str, list[str]]]] = {}
    for name in heads:
        out[name] = {}
        for method, fn in (("csls+model", per_token), ("csls+posterior", posterior)):
            lists = {}
            for q, full in ranked[name]["csls"].items():
                head = heads[name][q]
                scores = np.array([fn(*as_model[name](q, c)) for c in head])  # (depth,)
                lists[q] = [head[i] for i in np.argsort(-scores, kind="stable")] + full[depth:]
            out[name][method] = lists
    return out
