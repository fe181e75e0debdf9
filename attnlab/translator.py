"""Text in, text out: normalises input, tokenizes, batches by length, runs the search, detokenizes.

`Translator.load(run_dir)` reads a self-contained run directory (config, tokenizer, best weights).
The order of outputs always equals the order of inputs; an empty line translates to an empty line.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import torch

from attnlab import checkpoint
from attnlab.config import Config
from attnlab.data.batching import pad_sources
from attnlab.data.normalize import normalize_en, normalize_zh
from attnlab.decoding import DecodeOptions, search
from attnlab.model import Seq2SeqTransformer
from attnlab.tokenizer import Tokenizer

log = logging.getLogger(__name__)


class Translator:
    def __init__(self, cfg: Config, tokenizer: Tokenizer, model: Seq2SeqTransformer) -> None:
        self.cfg, self.tokenizer, self.model = cfg, tokenizer, model
        self.normalize = normalize_zh if cfg.src_lang == "zh" else normalize_en
        self.truncated = 0  # inputs cut to decode.max_input_tokens so far

    @classmethod
    def load(cls, run_dir: str | Path) -> "Translator":
        run_dir = Path(run_dir)
        cfg = checkpoint.load_run_config(run_dir)
        checkpoint.verify_manifest(run_dir)
        tokenizer = Tokenizer.load(run_dir / checkpoint.TOKENIZER_DIR)
        model = Seq2SeqTransformer(cfg.model)
        checkpoint.load_weights(model, run_dir / checkpoint.WEIGHTS_FILE)
        model.eval()
        return cls(cfg, tokenizer, model)

    def options(self, beam: int | None = None) -> DecodeOptions:
        opts = DecodeOptions.from_config(self.cfg.decode)
        return opts if beam is None else dataclasses.replace(opts, beam=beam)

    def encode(self, lines: Sequence[str]) -> list[list[int]]:
        """Normalised, tokenized source ids, truncated to decode.max_input_tokens (with one warning)."""
        ids = self.tokenizer.encode_src([self.normalize(line) for line in lines])
        limit = self.cfg.decode.max_input_tokens
        long = [i for i, x in enumerate(ids) if len(x) > limit]
        if long:
            if self.truncated == 0:
                log.warning("input line %d is longer than %d subwords and was truncated "
                            "(later long lines are truncated too, without a warning)", long[0] + 1, limit)
            self.truncated += len(long)
            ids = [x[:limit] for x in ids]
        return ids

    @torch.inference_mode()
    def translate_ids(self, src_ids: Sequence[Sequence[int]], beam: int | None = None,
                      max_tokens: int = 6000) -> list[list[int]]:
        """Translate tokenized sentences, batched by length; empty inputs give empty outputs."""
        opts = self.options(beam)
        out: list[list[int]] = [[] for _ in src_ids]
        order = sorted((i for i, x in enumerate(src_ids) if x), key=lambda i: len(src_ids[i]))
        start = 0
        while start < len(order):  # sorted by length: a batch holds sentences of similar length
            end = start + 1
            # rows (sentences × beams) × (source + expected output length) within the token budget
            while end < len(order) and (end - start + 1) * opts.beam * 3 * (len(src_ids[order[end]]) + 2) <= max_tokens:
                end += 1
            chunk = order[start:end]
            for i, hyp in zip(chunk, search(self.model, pad_sources([src_ids[i] for i in chunk]), opts)):
                out[i] = hyp
            start = end
        return out

    def translate(self, lines: Sequence[str], beam: int | None = None) -> list[str]:
        hyps = self.translate_ids(self.encode(lines), beam)
        return self.tokenizer.decode_tgt(hyps)
