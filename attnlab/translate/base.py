"""The text pipeline every engine shares: normalise, encode, truncate, bucket by length, decode, detokenize.

An engine subclasses `TranslatorBase` with a model for attnlab's searches, or with its own `translate_batch`,
`hypotheses_batch`, `score_batch` and `cross_attention`. Outputs keep the order of the inputs, an empty line
translates to an empty line, no output holds a line break.

`translate` gives one string per line; `translate_hypotheses` gives the n-best `Translation`s of each line, with
their scores, and optionally a target prefix each continues, word alignments and <unk>s replaced from the
source; `score` gives the model's log-probability of given translations, token by token (teacher forcing).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnlab.config import Config
from attnlab.data.normalize import normalizer
from attnlab.data.batching import make_batches, pad_sources
from attnlab.decoding import (DecodeOptions, Hypothesis, force_decode, length_penalty, output_limit, search,
                              search_hypotheses)
from attnlab.errors import AttnlabError
from attnlab.tokenizer import Tokenizer, encodable
from attnlab.translate import alignment as word_links

log = logging.getLogger(__name__)
EOS_PIECE = "</s>"  # how a scored <eos> is listed among the target pieces
# every character str.splitlines() breaks on: none may reach an output line, or line counts drift
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """The text with line and paragraph separators turned into spaces: it prints as exactly one line."""
    return _LINE_BREAKS.sub(" ", text)


def length_batches(src_ids: Sequence[Sequence[int]], opts: DecodeOptions, max_tokens: int, *,
                   one_limit: bool = False) -> list[list[int]]:
    """Indices of the non-empty sentences, sorted by length, cut into batches of similar length (`make_batches`)
    that hold at most max_tokens rows (sentences × beams) × (source + expected output) tokens, counted as
    3 × (length + 2) per row. With `one_limit`, the sentences of a batch also share one output length limit
    (for an engine that takes one per call)."""
    kept = [i for i, x in enumerate(src_ids) if x]
    width = opts.n_best if opts.sample else opts.beam  # rows per sentence
    rows = [(width * (len(src_ids[i]) + 2), width * 2 * (len(src_ids[i]) + 2)) for i in kept]
    limits = [output_limit(len(src_ids[i]), opts) for i in kept] if one_limit else None
    return [[kept[j] for j in batch] for batch in make_batches(rows, max_tokens, limits)]


@dataclass
class Translation:
    """One hypothesis of one input line."""

    text: str  # the translation (with <unk>s replaced when asked)
    score: float  # log_prob / lp(length): what beam search ranks by (attnlab.decoding.length_penalty)
    log_prob: float  # the model's log P(output | input): the sum of the token log-probabilities, <eos> included
    tokens: list[str]  # the target pieces, without <eos>
    alignment: list[tuple[int, int]] | None = None  # (source word, target word) links, when asked for
    source_words: list[str] | None = None  # the words the links count, when asked for
    target_words: list[str] | None = None


@dataclass
class Scored:
    """The model's score of one given translation (teacher forcing)."""

    log_prob: float  # log P(target | source), <eos> included
    tokens: list[str]  # the target pieces, then "</s>" for <eos>
    token_log_probs: list[float]  # one per piece of `tokens`


class TranslatorBase:
    """Text in, text out on one engine: `model` has what `decoding.Seq2SeqModel` describes, or the engine
    overrides `translate_batch`."""

    one_limit = False  # True: every batch shares one output length limit (see length_batches)
    attention_maps = False  # True: `attention(line)` shows the weights behind a translation
    alignments = False  # True: `cross_attention` gives the attention that alignments are read from

    def __init__(self, cfg: Config, tokenizer: Tokenizer, model: Any = None) -> None:
        self.cfg, self.tokenizer, self.model = cfg, tokenizer, model
        self.normalize = normalizer(cfg.src_lang)
        self.truncated = 0  # inputs cut to decode.max_input_tokens so far

    def options(self, beam: int | None = None, **overrides: Any) -> DecodeOptions:
        """Where decoding options are made: the run's [decode] table, the tokenizer's fixed special ids (the
        options' defaults; the decoder starts from the target-language tag in a model of both directions), and
        `beam` and the other `overrides` (DecodeConfig's fields: n_best, sample, ...) over the table's values
        when given (None: the table's; checked as decode.<field>)."""
        given = {k: v for k, v in {"beam": beam, **overrides}.items() if v is not None}
        return DecodeOptions.from_config(self.cfg.decode, bos_id=self.start_id, **given)

    @property
    def start_id(self) -> int:
        """The decoder's first token: <bos>, or the target language's tag in a model of both directions."""
        return self.tokenizer.start_id(self.cfg.tgt_lang if self.cfg.bidirectional else None)

    def encode(self, lines: Sequence[str]) -> list[list[int]]:
        """Normalised, tokenized source ids, truncated to decode.max_input_tokens (with one warning)."""
        ids = self.tokenizer.encode_src([self.normalize(encodable(line)) for line in lines])
        limit = self.cfg.decode.max_input_tokens
        long = [i for i, x in enumerate(ids) if len(x) > limit]
        if long:
            if self.truncated == 0:
                log.warning("input line %d is longer than %d subwords and was truncated "
                            "(later long lines are truncated too, without a warning)", long[0] + 1, limit)
            self.truncated += len(long)
            ids = [x[:limit] for x in ids]
        return ids

    def translate_batch(self, src_ids: Sequence[Sequence[int]], opts: DecodeOptions) -> list[list[int]]:
        """One batch of non-empty tokenized sentences -> output ids (<bos>/<eos> stripped)."""
        return search(self.model, pad_sources(src_ids), opts)

    def hypotheses_batch(self, src_ids: Sequence[Sequence[int]], opts: DecodeOptions,
                         prefixes: Sequence[Sequence[int]] | None = None) -> list[list[Hypothesis]]:
        """One batch of non-empty tokenized sentences -> opts.n_best hypotheses each, best first, their
        log_prob the model's own (rescored by `score_batch` where repetition_penalty reshaped the search's)."""
        hyps = search_hypotheses(self.model, pad_sources(src_ids), opts, prefixes)
        if opts.repetition_penalty == 1.0:
            return hyps
        flat = [(i, h) for i, sentence in enumerate(hyps) for h in sentence]
        scores = self.score_batch([src_ids[i] for i, _ in flat], [h.tokens for _, h in flat])
        for (_, h), token_scores in zip(flat, scores):
            h.log_prob = sum(token_scores[: h.length])  # without <eos> where the output reached its limit
            h.score = h.log_prob / length_penalty(h.length, opts.length_penalty)
        return [sorted(sentence, key=lambda h: h.score, reverse=True) for sentence in hyps]

    def score_batch(self, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """Non-empty sources and their targets (ids) -> log P of each target token, then of <eos>."""
        if not hasattr(self.model, "decode"):
            raise AttnlabError(f"the {type(self).__name__} engine cannot score given translations "
                               "(the attnlab and ctranslate2 engines can)")
        return force_decode(self.model, pad_sources(src_ids), tgt_ids, self.options()).token_log_probs

    def cross_attention(self, src_ids: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]],
                        layer: int | None = None) -> list[np.ndarray]:
        """Per sentence, the (T+1, S) cross-attention behind an output (teacher-forced; row t produced output
        token t, the last <eos>), heads averaged over `layer` (None: every layer)."""
        if not self.alignments:
            raise AttnlabError(f"the {type(self).__name__} engine gives no attention to align words with "
                               "(the attnlab engine does)", field="alignment")
        forced = force_decode(self.model, pad_sources(src_ids), outputs, self.options(), need_weights=True)
        try:
            return [word_links.layer_attention(c, layer) for c in forced.cross]
        except IndexError as e:
            raise AttnlabError(str(e), field="alignment_layer") from None

    def translate_ids(self, src_ids: Sequence[Sequence[int]], beam: int | None = None,
                      max_tokens: int = 6000) -> list[list[int]]:
        """Translate tokenized sentences, batched by length; empty inputs give empty outputs."""
        opts = self.options(beam)
        out: list[list[int]] = [[] for _ in src_ids]
        for batch in length_batches(src_ids, opts, max_tokens, one_limit=self.one_limit):
            for i, hyp in zip(batch, self.translate_batch([src_ids[i] for i in batch], opts)):
                out[i] = hyp
        return out

    def translate(self, lines: Sequence[str], beam: int | None = None) -> list[str]:
        """One output line per input line, in order (no output holds a line break of any kind)."""
        return [one_line(t) for t in self.tokenizer.decode_tgt(self.translate_ids(self.encode(lines), beam))]

    def translate_hypotheses(self, lines: Sequence[str], opts: DecodeOptions | None = None, *,
                             prefixes: Sequence[str] | None = None, alignment: bool = False,
                             alignment_layer: int | None = None, replace_unknowns: bool = False,
                             max_tokens: int = 6000) -> list[list[Translation]]:
        """Per line, opts.n_best translations, best first (an empty line: none). prefixes: per line, the start
        every translation of it continues ("" none). alignment: also the word links of each translation, from
        the heads of decoder layer `alignment_layer` (None: every layer); replace_unknowns: each <unk> becomes
        the source word it attends to most."""
        opts = opts or self.options()
        if prefixes is not None and len(prefixes) != len(lines):
            raise AttnlabError(f"{len(prefixes)} prefixes for {len(lines)} lines", field="prefix")
        src_ids = self.encode(lines)
        tgt_prefix = self.encode_target(prefixes) if prefixes is not None else None
        out: list[list[Translation]] = [[] for _ in lines]
        for batch in length_batches(src_ids, opts, max_tokens, one_limit=self.one_limit):
            sources = [src_ids[i] for i in batch]
            starts = None if tgt_prefix is None else [tgt_prefix[i] for i in batch]
            for i, hyps in zip(batch, self.hypotheses_batch(sources, opts, starts)):
                out[i] = self._translations(src_ids[i], hyps, alignment, alignment_layer, replace_unknowns)
        return out

    def encode_target(self, texts: Sequence[str]) -> list[list[int]]:
        """Target-side text (e.g. prefixes) normalised and tokenized as the training targets were."""
        norm = normalizer(self.cfg.tgt_lang)
        return self.tokenizer.encode_tgt([norm(encodable(t)) for t in texts])

    def _translations(self, src_ids: list[int], hyps: list[Hypothesis], links: bool, layer: int | None,
                      replace: bool) -> list[Translation]:
        """Hypotheses -> Translations: text, pieces, and (asked for) the alignment and <unk>s replaced."""
        texts = [one_line(t) for t in self.tokenizer.decode_tgt([h.tokens for h in hyps])]
        out = [Translation(text, h.score, h.log_prob, self.tokenizer.tgt_pieces(h.tokens))
               for text, h in zip(texts, hyps)]
        if not (links or replace) or not hyps:
            return out
        src_words = word_links.piece_words(self.tokenizer.src_pieces(src_ids))
        maps = self.cross_attention([src_ids] * len(hyps), [h.tokens for h in hyps], layer)
        for t, attn in zip(out, maps):
            tgt_words = word_links.piece_words(t.tokens)
            a_word = word_links.word_attention(attn, src_words, tgt_words)
            if links:
                t.alignment, t.source_words, t.target_words = word_links.links(a_word), src_words.text, tgt_words.text
            if replace:
                unknowns = word_links.unknown_words(t.tokens, src_words, a_word)
                t.text = word_links.fill_unknowns(t.text, unknowns, spaced=self.cfg.tgt_lang != "zh")
        return out

    def score(self, pairs: Sequence[tuple[str, str]], max_tokens: int = 6000) -> list[Scored | None]:
        """The model's log-probability of each (source, target) pair's target (None where the source is empty)."""
        src_ids, tgt_ids = self.encode([s for s, _ in pairs]), self.encode_target([t for _, t in pairs])
        out: list[Scored | None] = [None] * len(pairs)
        opts = dataclasses.replace(self.options(), beam=1, n_best=1, max_decoding_length=0)
        for batch in length_batches(src_ids, opts, max_tokens):
            scores = self.score_batch([src_ids[i] for i in batch], [tgt_ids[i] for i in batch])
            for i, token_scores in zip(batch, scores):
                tokens = [*self.tokenizer.tgt_pieces(tgt_ids[i]), EOS_PIECE]
                out[i] = Scored(sum(token_scores), tokens, token_scores)
        return out

    def attention(self, line: str, beam: int | None = None):
        raise AttnlabError(f"the {type(self).__name__} engine gives no attention maps (the attnlab engine does)")
