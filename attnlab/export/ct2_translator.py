"""Text in, text out with an exported CTranslate2 model: the same interface as `attnlab.translator.Translator`.

`CT2Translator.load(export_dir)` reads what `export_ctranslate2` wrote (model.bin, the sentencepiece model,
the run's config); `translate(lines, beam)` normalises, tokenizes, batches by length, decodes with
`ctranslate2.Translator.translate_batch` and detokenizes. Input order is kept; an empty line stays empty.

Decoding follows attnlab's options (`decode` table of the config):
    output length limit  floor(max_len_a · source tokens + max_len_b), per sentence: a batch holds sentences
                         of one limit, passed as `max_decoding_length`
    <pad> and <bos>      never emitted (`suppress_sequences`)
    empty output         allowed (`min_decoding_length = 0`)
so greedy outputs equal attnlab's `greedy_search` token for token. Beam search differs in one respect:
CTranslate2 divides a finished hypothesis's log-probability by length^α, attnlab by GNMT's ((5 + n) / 6)^α.
With α = 0 both keep the same candidates and pick the same best hypothesis, up to CTranslate2 renormalising
the probabilities once <pad> and <bos> are removed (attnlab leaves their tiny share out).

Reference: CTranslate2 documentation, "Translation" (`Translator.translate_batch` options).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from attnlab.config import Config
from attnlab.translator import TranslatorBase
from attnlab.decoding import DecodeOptions
from attnlab.errors import AttnlabError
from attnlab.export import load_export
from attnlab.export.ctranslate2 import MODEL_FILE
from attnlab.tokenizer import BOS, PAD, SPECIALS, UNK, Tokenizer

try:
    import ctranslate2
except ImportError:
    raise AttnlabError("the ctranslate2 engine needs the ctranslate2 package: pip install ctranslate2") from None



def output_limit(n_src: int, opts: DecodeOptions) -> int:
    """attnlab's per-sentence output length limit (see `attnlab.decoding.max_output_lengths`)."""
    return max(1, math.floor(opts.max_len_a * n_src + opts.max_len_b))


def batches_by_limit(src_ids: Sequence[Sequence[int]], opts: DecodeOptions, max_tokens: int) -> list[list[int]]:
    """Indices of the non-empty sentences, sorted by length, cut into batches that share one output limit
    and hold at most max_tokens rows × (source + expected output) tokens (as Translator.translate_ids)."""
    order = sorted((i for i, x in enumerate(src_ids) if x), key=lambda i: len(src_ids[i]))
    batches: list[list[int]] = []
    for i in order:
        n = len(src_ids[i])
        last = batches[-1] if batches else None
        fits = last is not None and (len(last) + 1) * opts.beam * 3 * (n + 2) <= max_tokens
        if fits and output_limit(len(src_ids[last[0]]), opts) == output_limit(n, opts):
            last.append(i)
        else:
            batches.append([i])
    return batches


class CT2Translator(TranslatorBase):
    """Translates with a CTranslate2 model exported from an attnlab run."""

    def __init__(self, cfg: Config, tokenizer: Tokenizer, engine: "ctranslate2.Translator") -> None:
        super().__init__(cfg, tokenizer)
        self.engine = engine
        self._src_piece = tokenizer.src.id_to_piece
        self._tgt_id = {tokenizer.tgt.id_to_piece(i): i for i in range(tokenizer.tgt.get_piece_size())}

    @classmethod
    def load(cls, model_dir: str | Path, threads: int = 0, compute_type: str = "default") -> "CT2Translator":
        """threads: CTranslate2 intra-op threads (0: its default). compute_type: e.g. "int8" or "float32"."""
        cfg, tokenizer = load_export(model_dir, MODEL_FILE, "a CTranslate2", "ctranslate2")
        try:
            engine = ctranslate2.Translator(str(model_dir), device="cpu", compute_type=compute_type,
                                            inter_threads=1, intra_threads=threads)
        except (RuntimeError, ValueError) as e:
            raise AttnlabError(f"CTranslate2 cannot load {model_dir}: {e}") from None
        return cls(cfg, tokenizer, engine)

    def translate_batch(self, src_ids: Sequence[Sequence[int]], opts: DecodeOptions, limit: int) -> list[list[int]]:
        """One batch of non-empty tokenized sentences, all with output limit `limit` -> output ids."""
        results = self.engine.translate_batch(
            [[self._src_piece(i) for i in ids] for ids in src_ids],
            beam_size=opts.beam, length_penalty=opts.length_penalty, max_decoding_length=limit,
            min_decoding_length=0, max_input_length=0, suppress_sequences=[[SPECIALS[PAD]], [SPECIALS[BOS]]],
        )
        return [[self._tgt_id.get(piece, UNK) for piece in r.hypotheses[0]] for r in results]

    def translate_ids(self, src_ids: Sequence[Sequence[int]], beam: int | None = None,
                      max_tokens: int = 6000) -> list[list[int]]:
        """Translate tokenized sentences, batched by length; empty inputs give empty outputs."""
        opts = self.options(beam)
        out: list[list[int]] = [[] for _ in src_ids]
        for batch in batches_by_limit(src_ids, opts, max_tokens):
            limit = output_limit(len(src_ids[batch[0]]), opts)
            for i, hyp in zip(batch, self.translate_batch([src_ids[i] for i in batch], opts, limit)):
                out[i] = hyp
        return out
