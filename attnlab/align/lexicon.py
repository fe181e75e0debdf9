"""A bilingual lexicon read from a trained translation model's cross-attention.

The model reads each training pair with teacher forcing; the decoder's cross-attention at the step
that produces target piece t, averaged over the heads of one layer (or of all layers), is a soft
alignment A (T, S) of target pieces to source pieces (Bahdanau et al. 2015; as word alignments from
a Transformer, Garg et al. 2019, "Jointly Learning to Align and Translate with Transformer Models",
who find the penultimate layer best). Pieces are grouped into words by their character offsets:
source pieces into the words the zh-mono recipe's segmenter cuts (`zh_mono.segment`), target pieces
into English words (runs of letters, lowercased). For target word e and source word z,
    A_word[e, z] = mean over e's pieces of the sum over z's pieces of A,
and e is aligned to argmax_z A_word[e, z] (one hard link per target word). Over the corpus,
c(z, e) counts the links and n(z), n(e) the occurrences, and the candidates of a query are ranked by
the Dice coefficient 2 c(z, e) / (n(z) + n(e)), which keeps frequent words that attend anywhere
("the", "的") from topping every list. The same counts rank both directions.

Knows the model only through `encode(src, need_weights)` / `decode(tgt, memory, need_weights)`
(attnlab.model.Seq2SeqTransformer) and the tokenizer's sentencepiece processors.

Shapes: B pairs in a batch, H heads, T target pieces (+1 for <eos>), S source pieces, Z source
words, E target words.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

log = logging.getLogger(__name__)

_LETTERS = re.compile(r"[A-Za-z]+")
ALL_LAYERS = -1  # `layers` entry meaning: the mean over every decoder layer


def char_offsets(text: str, byte_spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """UTF-8 byte spans [begin, end) of `text` as character spans."""
    char_at = np.zeros(len(text.encode("utf-8")) + 1, dtype=np.int64)  # byte offset -> char offset
    pos = 0
    for i, ch in enumerate(text):
        n = len(ch.encode("utf-8"))
        char_at[pos:pos + n] = i
        pos += n
    char_at[pos] = len(text)
    return [(int(char_at[b]), int(char_at[e])) for b, e in byte_spans]


def zh_word_spans(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) of the zh-mono segmentation of normalised Chinese `text`, character offsets."""
    from attnlab.data.zh_mono import normalize_word, segment

    surface = normalize_word(text)  # what the segmenter reads: one character for each of text's
    if len(surface) != len(text):
        return []
    spans, pos = [], 0
    for word in segment(text):
        start = surface.find(word, pos)
        if start < 0:
            return []
        spans.append((word, start, start + len(word)))
        pos = start + len(word)
    return spans


def en_word_spans(text: str) -> list[tuple[str, int, int]]:
    """(lowercased word, start, end) for each run of Latin letters in `text`."""
    return [(m.group().lower(), m.start(), m.end()) for m in _LETTERS.finditer(text)]


def piece_to_word(pieces: Sequence[tuple[int, int]], words: Sequence[tuple[str, int, int]]) -> np.ndarray:
    """For each piece's character span, the index of the first word it overlaps (-1: none). (P,) int64"""
    out = np.full(len(pieces), -1, dtype=np.int64)
    for p, (b, e) in enumerate(pieces):
        for w, (_, ws, we) in enumerate(words):
            if b < we and ws < e:
                out[p] = w
                break
    return out


def word_alignment(attn: np.ndarray, tgt_word: np.ndarray, src_word: np.ndarray, n_tgt: int, n_src: int) -> np.ndarray:
    """Piece attention (T, S) -> word attention (E, Z): rows averaged over a target word's pieces,
    columns summed over a source word's pieces; pieces of no word (-1) are left out."""
    rows = np.zeros((n_tgt, attn.shape[1]), dtype=np.float64)  # (E, S)
    keep = tgt_word >= 0
    np.add.at(rows, tgt_word[keep], attn[keep])
    rows /= np.maximum(np.bincount(tgt_word[keep], minlength=n_tgt), 1)[:, None]
    out = np.zeros((n_tgt, n_src), dtype=np.float64)  # (E, Z)
    cols = src_word >= 0
    np.add.at(out.T, src_word[cols], rows[:, cols].T)
    return out


@dataclass
class AlignmentCounts:
    """Link and occurrence counts over a corpus, for one attention layer choice."""

    links: Counter = field(default_factory=Counter)  # (zh word, en word) -> hard links
    zh: Counter = field(default_factory=Counter)  # zh word -> occurrences in the aligned pairs
    en: Counter = field(default_factory=Counter)  # en word -> occurrences

    def add(self, a_word: np.ndarray, zh_words: Sequence[str], en_words: Sequence[str]) -> None:
        """One pair's word attention (E, Z): each target word linked to its most attended source word."""
        self.zh.update(zh_words)
        self.en.update(en_words)
        for e, z in enumerate(a_word.argmax(axis=1)):
            if a_word[e, z] > 0:  # a target word whose pieces all fell outside words links nothing
                self.links[(zh_words[z], en_words[e])] += 1

    def ranked(self, n: int, reverse: bool = False, min_links: int = 1) -> dict[str, list[str]]:
        """query word -> its n best candidates by Dice, best first (zh -> en; en -> zh with `reverse`)."""
        by_query: dict[str, list[tuple[float, str]]] = {}
        for (z, e), c in self.links.items():
            if c < min_links:
                continue
            dice = 2 * c / (self.zh[z] + self.en[e])
            q, cand = (e, z) if reverse else (z, e)
            by_query.setdefault(q, []).append((-dice, cand))
        return {q: [cand for _, cand in sorted(cands)[:n]] for q, cands in by_query.items()}


@dataclass
class EncodedPair:
    """One pair as the model reads it, with each piece's word."""

    src_ids: list[int]  # (S,) source piece ids
    tgt_ids: list[int]  # (T,) target piece ids, without <bos>/<eos>
    src_word: np.ndarray  # (S,) index into zh_words, -1 for a piece of no word
    tgt_word: np.ndarray  # (T,) index into en_words, -1 for a piece of no word
    zh_words: list[str]  # (Z,)
    en_words: list[str]  # (E,)


def encode_pair(tokenizer, zh: str, en: str) -> EncodedPair | None:
    """A raw (Chinese, English) pair normalised as the model's data is, cut into pieces and words;
    None when a side has no word."""
    from attnlab.data.normalize import normalize_en, normalize_zh
    from attnlab.tokenizer import encodable

    zh, en = normalize_zh(encodable(zh)), normalize_en(encodable(en))
    zh_words, en_words = zh_word_spans(zh), en_word_spans(en)
    if not zh_words or not en_words:
        return None
    src = tokenizer.src.encode([zh], return_type="proto")[0]
    tgt = tokenizer.tgt.encode([en], return_type="proto")[0]
    return EncodedPair([p.id for p in src.pieces], [p.id for p in tgt.pieces],
                       piece_to_word(char_offsets(zh, [(p.begin, p.end) for p in src.pieces]), zh_words),
                       piece_to_word(char_offsets(en, [(p.begin, p.end) for p in tgt.pieces]), en_words),
                       [w for w, _, _ in zh_words], [w for w, _, _ in en_words])


@torch.inference_mode()
def cross_attention(model, batch: Sequence[EncodedPair], layers: Sequence[int],
                    start: int | None = None) -> dict[int, list[np.ndarray]]:
    """Teacher-forced cross-attention of each pair, per layer choice: {layer: [(T, S) per pair]},
    heads averaged; row t is the step that produces target piece t. `start`: the decoder's first id
    (None: <bos>; the <2en> tag for a model of both directions)."""
    from attnlab.data.batching import pad_sources
    from attnlab.tokenizer import BOS, PAD

    start = BOS if start is None else start
    src = pad_sources([p.src_ids for p in batch])  # (B, S)
    t_len = max(len(p.tgt_ids) for p in batch) + 1
    tgt_in = torch.full((len(batch), t_len), PAD, dtype=torch.long)  # (B, T+1)
    for r, p in enumerate(batch):
        tgt_in[r, :len(p.tgt_ids) + 1] = torch.tensor([start, *p.tgt_ids], dtype=torch.long)
    out = model.decode(tgt_in, memory=model.encode(src), need_weights=True)
    per_layer = [w.mean(dim=1) for w in out.cross_attention]  # each (B, T+1, S)
    result = {}
    for layer in layers:
        a = torch.stack(per_layer).mean(dim=0) if layer == ALL_LAYERS else per_layer[layer]  # (B, T+1, S)
        a = a.float().numpy()
        result[layer] = [a[r, :len(p.tgt_ids), :len(p.src_ids)] for r, p in enumerate(batch)]
    return result


def read_alignments(model, tokenizer, pairs: Sequence[tuple[str, str]], layers: Sequence[int] = (ALL_LAYERS,),
                    batch_size: int = 64) -> dict[int, AlignmentCounts]:
    """Link counts over (Chinese, English) pairs for each layer choice (a decoder layer index, or
    ALL_LAYERS for their mean); the model translates Chinese into English."""
    n_layers = len(model.decoder)
    for layer in layers:
        if layer != ALL_LAYERS and not 0 <= layer < n_layers:
            raise ValueError(f"decoder layer {layer} out of range: the model has {n_layers} (or {ALL_LAYERS} for all)")
    encoded = [e for zh, en in pairs if (e := encode_pair(tokenizer, zh, en)) is not None]
    encoded.sort(key=lambda p: (len(p.src_ids), len(p.tgt_ids)))  # little padding per batch
    counts = {layer: AlignmentCounts() for layer in layers}
    start_id = tokenizer.start_id("en") if tokenizer.language_tags else None  # the decoder writes English
    for first in range(0, len(encoded), batch_size):
        batch = encoded[first:first + batch_size]
        for layer, attns in cross_attention(model, batch, layers, start_id).items():
            for p, attn in zip(batch, attns):
                a_word = word_alignment(attn, p.tgt_word, p.src_word, len(p.en_words), len(p.zh_words))
                counts[layer].add(a_word, p.zh_words, p.en_words)
    log.info("aligned %d of %d pairs", len(encoded), len(pairs))
    return counts


def backoff(primary: dict[str, list[str]], fallback: dict[str, list[str]], n: int) -> dict[str, list[str]]:
    """query -> the primary candidates, then the fallback ones not already there, n at most: the
    lexicon where it knows the word, the vector space below it and for the words it never saw."""
    out = {}
    for q in primary.keys() | fallback.keys():
        merged = list(dict.fromkeys(primary.get(q, []) + fallback.get(q, [])))
        out[q] = merged[:n]
    return out


def score(gold: dict[str, set[str]], ranked: dict[str, list[str]], ks: tuple[int, ...], name: str) -> dict:
    """P@k of ranked candidates in `AlignedSpace.evaluate`'s form, under the method name `name`:
    a query is covered when it has a candidate; `of_all` counts every query."""
    from attnlab.align.space import precision_at_k

    ranked = {q: ranked[q] for q in gold if ranked.get(q)}
    covered, every = precision_at_k(gold, ranked, ks)
    return {"queries": len(gold), "covered": len(ranked), "coverage": round(100 * len(ranked) / max(len(gold), 1), 2),
            name: covered, "of_all": {name: every}}


def evaluate(counts: AlignmentCounts, pairs: Sequence[tuple[str, str]], ks: tuple[int, ...] = (1, 5, 10),
             space=None, method: str = "csls") -> dict:
    """P@k of the lexicon on a (zh, en) test dictionary, both directions (method name "dice"); with
    an AlignedSpace `space`, of the lexicon backed off to the space's `method` neighbours
    (`backoff`; method name "dice+csls" or "dice+cosine")."""
    from attnlab.align.space import gold_sets

    out = {}
    for (name, reverse), gold in zip((("zh-en", False), ("en-zh", True)), gold_sets(list(pairs))):
        ranked = counts.ranked(max(ks), reverse=reverse)
        if space is None:
            out[name] = score(gold, ranked, ks, "dice")
            continue
        nearest = space.ranked(list(gold), reverse=reverse, method=method, n=max(ks))
        out[name] = score(gold, backoff({q: ranked[q] for q in gold if q in ranked}, nearest, max(ks)), ks,
                          f"dice+{method}")
    return out
