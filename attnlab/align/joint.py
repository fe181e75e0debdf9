"""A jointly trained bilingual word space: one Word2Vec run over Chinese and English text at once.

Follows Vulić & Moens 2016 ("Bilingual Distributed Word Representations from Document-Aligned
Comparable Data", JAIR 55), merge and shuffle: the words of a sentence and of its translation are
put into one pseudo-bilingual sentence and shuffled, so that skip-gram sees Chinese words among
English context words and the other way round. Here the pseudo-bilingual sentences come from
parallel sentence pairs (the Tatoeba training split), each pair `pair_copies` times with a fresh
shuffle, and are mixed with the monolingual corpora, which give the words their meaning from more
text. Dictionary pairs (the CC-CEDICT training split; never a test pair) can be added as anchors in
two ways: each pair as a two-word sentence, `anchor_copies` times; and code-switching (Gouws &
Søgaard 2015, "Simple task-specific bilingual word embeddings"): a monolingual word that has a
dictionary translation is replaced by one of them with probability `switch`.

Every token carries its language as a prefix (`zh:书`, `en:book`), so the two vocabularies never
merge (the Chinese corpus has Latin words and numbers too). After training the vectors are split
back into a Chinese and an English set (`split_tagged`), and `joint_space` wraps them into an
`AlignedSpace` with the identity map, which `align eval` and `align translate` read like any other.

Chinese is segmented as the zh-mono recipe does (`zh_mono.segment`: normalise, jieba with its
HMM); English is cut as `en_mix` is written (lowercase a-z words, anything else a separator).

Shapes: N corpus words, S sentences, V vocabulary, D dimensions.
"""

from __future__ import annotations

import logging
import random
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from attnlab.align import procrustes, retrieval
from attnlab.align.config import JointConfig  # the settings live apart, free of numpy, for the CLI
from attnlab.align.space import AlignedSpace, truncate
from attnlab.errors import AttnlabError
from attnlab.word2vec.config import Word2VecConfig
from attnlab.word2vec.corpus import EncodedCorpus, encode, iter_lines
from attnlab.word2vec.train import TrainStats, train
from attnlab.word2vec.vectors import WordVectors

log = logging.getLogger(__name__)

LANGS = ("zh", "en")
_LATIN_WORD = re.compile(r"[a-z]+")

Words = list[str]


# ---- tokens -------------------------------------------------------------------------------------
def tag(lang: str, words: Iterable[str]) -> Words:
    """`lang:word` for each word: the joint vocabulary's spelling."""
    return [f"{lang}:{w}" for w in words]


def split_tagged(vectors: WordVectors) -> dict[str, WordVectors]:
    """The joint vectors as one vector set per language, tags removed, frequency order kept."""
    rows: dict[str, list[int]] = {lang: [] for lang in LANGS}
    for i, word in enumerate(vectors.words):
        lang, sep, _ = word.partition(":")
        if not sep or lang not in rows:
            raise AttnlabError(f"joint vocabulary word {word!r} has no language tag ({'/'.join(LANGS)}:)")
        rows[lang].append(i)
    out = {}
    for lang, ids in rows.items():
        ids = np.array(ids, dtype=np.int64)
        counts = None if vectors.counts is None else vectors.counts[ids]
        out[lang] = WordVectors([vectors.words[i][len(lang) + 1:] for i in ids], vectors.vectors[ids], counts)
    return out


def english_words(text: str) -> Words:
    """English words as `en_mix` spells them: accents dropped, lowercase, runs of a-z."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _LATIN_WORD.findall(ascii_text.lower())


def segment_pairs(pairs: Sequence[tuple[str, str]]) -> list[tuple[Words, Words]]:
    """Raw (Chinese, English) sentence pairs as (Chinese words, English words), Chinese cut by the
    zh-mono recipe's segmenter; pairs with an empty side are dropped."""
    from attnlab.data.zh_mono import segment

    out = [(segment(zh), english_words(en)) for zh, en in pairs]
    return [(z, e) for z, e in out if z and e]


# ---- the corpus ---------------------------------------------------------------------------------
def pseudo_bilingual(pairs: Sequence[tuple[Words, Words]], copies: int, rng: random.Random) -> Iterator[Words]:
    """Each pair's tagged words merged and shuffled into one sentence, `copies` times (Vulić & Moens)."""
    for _ in range(copies):
        for zh, en in pairs:
            sentence = tag("zh", zh) + tag("en", en)
            rng.shuffle(sentence)
            yield sentence


def anchor_sentences(dictionary: Sequence[tuple[str, str]], copies: int) -> Iterator[Words]:
    """Each (Chinese, English) dictionary pair as the two-word sentence [zh:word, en:word], `copies` times."""
    for _ in range(copies):
        for zh, en in dictionary:
            yield [f"zh:{zh}", f"en:{en}"]


def translations(dictionary: Sequence[tuple[str, str]], reverse: bool = False) -> dict[str, list[str]]:
    """word -> its dictionary translations in file order (Chinese -> English, or English -> Chinese)."""
    out: dict[str, list[str]] = {}
    for zh, en in dictionary:
        src, tgt = (en, zh) if reverse else (zh, en)
        out.setdefault(src, []).append(tgt)
    return out


def code_switch(words: Words, lang: str, table: dict[str, list[str]], p: float, rng: random.Random) -> Words:
    """Tagged words of one `lang` sentence, each word that has translations in `table` replaced,
    with probability p, by one of them drawn uniformly (tagged with the other language)."""
    own, other = f"{lang}:", ("en:" if lang == "zh" else "zh:")
    out = []
    for w in words:
        options = table.get(w)
        if options is not None and rng.random() < p:
            out.append(other + options[rng.randrange(len(options))])
        else:
            out.append(own + w)
    return out


def monolingual(path: Path, lang: str, max_len: int, table: dict[str, list[str]] | None = None,
                p: float = 0.0, rng: random.Random | None = None) -> Iterator[Words]:
    """Tagged sentences of a monolingual corpus (one sentence per line, or text8's one long line cut
    into pieces of `max_len` words); with a dictionary `table` and p > 0, code-switched."""
    for words in iter_lines(path, max_len):
        yield code_switch(words, lang, table, p, rng) if table and p > 0.0 else tag(lang, words)


def shuffle_sentences(corpus: EncodedCorpus, rng: np.random.Generator) -> EncodedCorpus:
    """The same sentences in a random order, so that every source is spread over the whole run
    (the learning rate decays along the corpus; a source left at the end would get only the small rates)."""
    lengths = np.diff(corpus.starts)  # (S,)
    order = rng.permutation(len(lengths))  # (S,)
    new_lengths = lengths[order]
    starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(new_lengths, out=starts[1:])
    offset = np.repeat(corpus.starts[:-1][order] - starts[:-1], new_lengths)  # (N,) old position - new position
    ids = corpus.ids[np.arange(corpus.n_words, dtype=np.int64) + offset]
    return EncodedCorpus(corpus.words, corpus.counts, np.ascontiguousarray(ids), starts, corpus.raw_words)


@dataclass
class JointInputs:
    """What the joint corpus is made of; every part may be left out."""

    zh_mono: Path | None = None  # segmented Chinese, one sentence per line (data/zh-mono/zh.txt)
    en_mono: Path | None = None  # English, text8 style or one sentence per line (en_mix.txt)
    parallel: Sequence[tuple[Words, Words]] = ()  # (Chinese words, English words) pairs, see `segment_pairs`
    dictionary: Sequence[tuple[str, str]] = ()  # (Chinese, English) anchor pairs: training pairs only


def joint_sentences(inputs: JointInputs, cfg: JointConfig, max_len: int) -> Iterator[Words]:
    """Every tagged sentence of the joint corpus, source by source (`build_corpus` shuffles them)."""
    rng = random.Random(cfg.seed)
    switching = cfg.switch > 0.0 and len(inputs.dictionary) > 0
    zh_table = translations(inputs.dictionary) if switching else None
    en_table = translations(inputs.dictionary, reverse=True) if switching else None
    if inputs.zh_mono is not None:
        yield from monolingual(inputs.zh_mono, "zh", max_len, zh_table, cfg.switch, rng)
    if inputs.en_mono is not None:
        yield from monolingual(inputs.en_mono, "en", max_len, en_table, cfg.switch, rng)
    yield from pseudo_bilingual(inputs.parallel, cfg.pair_copies, rng)
    yield from anchor_sentences(inputs.dictionary, cfg.anchor_copies)


def build_corpus(inputs: JointInputs, cfg: JointConfig, w2v: Word2VecConfig) -> EncodedCorpus:
    """The joint corpus encoded with w2v's min_count / max_vocab, sentences in a seeded random order."""
    sentences = (s[i:i + w2v.max_sentence_length] for s in joint_sentences(inputs, cfg, w2v.max_sentence_length)
                 for i in range(0, len(s), w2v.max_sentence_length))
    corpus = encode(sentences, w2v.min_count, w2v.max_vocab)
    return shuffle_sentences(corpus, np.random.default_rng(cfg.seed))


def train_joint(inputs: JointInputs, cfg: JointConfig, w2v: Word2VecConfig,
                show_progress: bool | None = None) -> tuple[dict[str, WordVectors], TrainStats]:
    """Train Word2Vec on the joint corpus; ({"zh": vectors, "en": vectors}, training statistics)."""
    corpus = build_corpus(inputs, cfg, w2v)
    log.info("joint corpus: %d sentences, %d words, %d word types", len(corpus.starts) - 1, corpus.n_words,
             len(corpus.words))
    vectors, stats = train(corpus, w2v, show_progress=show_progress)
    return split_tagged(vectors), stats


# ---- the space ----------------------------------------------------------------------------------
def _prepare(vectors: np.ndarray, center: bool) -> tuple[np.ndarray, np.ndarray]:
    """Unit rows, optionally centred and unit again: (V, D) -> ((V, D) float32, the mean removed (D,))."""
    if center:
        return procrustes.normalize_embeddings(vectors)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return unit.astype(np.float32), np.zeros(vectors.shape[1], dtype=np.float32)


def joint_space(zh: WordVectors, en: WordVectors, cfg: JointConfig, info: dict | None = None) -> AlignedSpace:
    """The two halves of a joint space as an AlignedSpace (identity map, CSLS penalties computed);
    `info` (inputs, training statistics) goes into its config.json."""
    zh, en = truncate(zh, cfg.max_vocab), truncate(en, cfg.max_vocab)
    if zh.dim != en.dim:
        raise AttnlabError(f"the two halves of a joint space differ in dimension: zh {zh.dim}, en {en.dim}")
    xs, zh_mean = _prepare(zh.vectors, cfg.center)  # (Vs, D)
    xt, en_mean = _prepare(en.vectors, cfg.center)  # (Vt, D)
    zh_r, en_r = retrieval.csls_penalties(xs, xt, cfg.csls_k)
    record = {"config": {"method": "joint", "src_lang": "zh", "tgt_lang": "en", **asdict(cfg)},
              "vocab": {"src": len(zh), "tgt": len(en), "dim": zh.dim}, **(info or {})}
    return AlignedSpace(WordVectors(zh.words, xs, zh.counts), WordVectors(en.words, xt, en.counts),
                        np.eye(zh.dim, dtype=np.float32), zh_mean, en_mean, zh_r, en_r, record)


# ---- from files ---------------------------------------------------------------------------------
def build_joint_space(*, zh_mono: Path | None, en_mono: Path | None, parallel: Path | None,
                      dictionary: Path | None, cfg: JointConfig, w2v: Word2VecConfig,
                      exclude: Iterable[str] = (), show_progress: bool | None = None) -> AlignedSpace:
    """Read the inputs, train the joint Word2Vec and return its space.

    `parallel` is a Tatoeba TSV or a `zh TAB en` file of sentence pairs; `dictionary` a `zh TAB en`
    word-pair file of anchors (training pairs only); dictionary pairs whose Chinese word is in
    `exclude` (held-out dev headwords) are left out."""
    from attnlab.align.dictionary import read_pairs
    from attnlab.data.parallel import read_tsv

    if zh_mono is None and en_mono is None and parallel is None:
        raise AttnlabError("a joint space needs at least one corpus (zh_mono, en_mono or parallel)")
    held_out = set(exclude)
    anchors = [p for p in read_pairs(dictionary) if p[0] not in held_out] if dictionary is not None else []
    pairs = segment_pairs(read_tsv(parallel)) if parallel is not None else []
    log.info("joint inputs: %d sentence pairs, %d dictionary pairs", len(pairs), len(anchors))
    vectors, stats = train_joint(JointInputs(zh_mono, en_mono, pairs, anchors), cfg, w2v, show_progress)
    info = {"inputs": {"zh_mono": str(zh_mono), "en_mono": str(en_mono), "parallel": str(parallel),
                       "dictionary": str(dictionary), "sentence_pairs": len(pairs), "dictionary_pairs": len(anchors),
                       "held_out_headwords": len(held_out)},
            "word2vec": asdict(w2v),
            "training": {"corpus_words": stats.corpus_words, "seconds": round(stats.seconds, 1),
                         "read_seconds": round(stats.read_seconds, 1), "loss": round(stats.loss, 4)}}
    return joint_space(vectors["zh"], vectors["en"], cfg, info)
