"""The text pipeline every engine shares: normalise, encode, truncate, bucket by length, decode, detokenize.

An engine subclasses `TranslatorBase` with a model for attnlab's searches, or with its own `translate_batch`.
Outputs keep the order of the inputs, an empty line translates to an empty line, no output holds a line break.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from attnlab.config import Config
from attnlab.data.normalize import normalizer
from attnlab.data.batching import make_batches, pad_sources
from attnlab.decoding import DecodeOptions, output_limit, search
from attnlab.errors import AttnlabError
from attnlab.tokenizer import Tokenizer, encodable

log = logging.getLogger(__name__)
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
    rows = [(opts.beam * (len(src_ids[i]) + 2), opts.beam * 2 * (len(src_ids[i]) + 2)) for i in kept]
    limits = [output_limit(len(src_ids[i]), opts) for i in kept] if one_limit else None
    return [[kept[j] for j in batch] for batch in make_batches(rows, max_tokens, limits)]


class TranslatorBase:
    """Text in, text out on one engine: `model` has what `decoding.Seq2SeqModel` describes, or the engine
    overrides `translate_batch`."""

    one_limit = False  # True: every batch shares one output length limit (see length_batches)
    attention_maps = False  # True: `attention(line)` shows the weights behind a translation

    def __init__(self, cfg: Config, tokenizer: Tokenizer, model: Any = None) -> None:
        self.cfg, self.tokenizer, self.model = cfg, tokenizer, model
        self.normalize = normalizer(cfg.src_lang)
        self.truncated = 0  # inputs cut to decode.max_input_tokens so far

    def options(self, beam: int | None = None) -> DecodeOptions:
        """Where decoding options are made: the run's [decode] table, the tokenizer's fixed special ids (the
        options' defaults), and `beam` over the table's beam size when given (checked as decode.beam)."""
        return DecodeOptions.from_config(self.cfg.decode, **({} if beam is None else {"beam": beam}))

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

    def attention(self, line: str, beam: int | None = None):
        raise AttnlabError(f"the {type(self).__name__} engine gives no attention maps (the attnlab engine does)")
