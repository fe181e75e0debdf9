"""Text in, text out: normalises input, tokenizes, batches by length, runs the search, detokenizes.

`Translator.load(run_dir)` reads a self-contained run directory (config, tokenizer, best weights).
The order of outputs always equals the order of inputs; an empty line translates to an empty line.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from attnlab import checkpoint
from attnlab.config import Config
from attnlab.data.batching import pad_sources
from attnlab.data.normalize import normalize_en, normalize_zh
from attnlab.decoding import DecodeOptions, search
from attnlab.model import Seq2SeqTransformer
from attnlab.errors import AttnlabError
from attnlab.tokenizer import BOS, EOS, Tokenizer, encodable

log = logging.getLogger(__name__)
# every character str.splitlines() breaks on: none may reach an output line, or line counts drift
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def one_line(text: str) -> str:
    """The text with line and paragraph separators turned into spaces: it prints as exactly one line."""
    return _LINE_BREAKS.sub(" ", text)


@dataclass
class AttentionMaps:
    """The attention weights behind one translation, from the readable attention path."""

    source: list[str]  # S source subword pieces
    target: list[str]  # T target pieces produced, ending with <eos> (row t is the step that produced target[t])
    translation: str
    encoder: Tensor  # (L_enc, H, S, S) encoder self-attention
    decoder: Tensor  # (L_dec, H, T, T) decoder self-attention (causal)
    cross: Tensor  # (L_dec, H, T, S) decoder cross-attention over the source


class TranslatorBase:
    """What every engine shares: normalisation, tokenization with truncation, decoding options, detokenization.

    Subclasses supply `translate_ids` (the search on a given engine)."""

    def __init__(self, cfg: Config, tokenizer: Tokenizer) -> None:
        self.cfg, self.tokenizer = cfg, tokenizer
        self.normalize = normalize_zh if cfg.src_lang == "zh" else normalize_en
        self.truncated = 0  # inputs cut to decode.max_input_tokens so far

    def options(self, beam: int | None = None) -> DecodeOptions:
        """The run's [decode] settings; `beam` overrides its beam size."""
        opts = DecodeOptions.from_config(self.cfg.decode)
        if beam is None:
            return opts
        if beam < 1:
            raise AttnlabError(f"beam must be at least 1, got {beam}")
        return dataclasses.replace(opts, beam=beam)

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

    def translate_ids(self, src_ids: Sequence[Sequence[int]], beam: int | None = None) -> list[list[int]]:
        raise NotImplementedError

    def translate(self, lines: Sequence[str], beam: int | None = None) -> list[str]:
        """One output line per input line, in order (no output holds a line break of any kind)."""
        return [one_line(t) for t in self.tokenizer.decode_tgt(self.translate_ids(self.encode(lines), beam))]


class Translator(TranslatorBase):
    """attnlab's own PyTorch model and search."""

    def __init__(self, cfg: Config, tokenizer: Tokenizer, model: Seq2SeqTransformer) -> None:
        super().__init__(cfg, tokenizer)
        self.model = model

    @classmethod
    def load(cls, run_dir: str | Path) -> "Translator":
        run = checkpoint.load_run(run_dir)
        return cls(run.cfg, run.tokenizer, run.model)

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

    @torch.inference_mode()
    def attention(self, line: str, beam: int | None = None) -> AttentionMaps:
        """Translate one line, then rerun the decoder on the result with weights returned."""
        src_ids = self.encode([line])[0]
        if not src_ids:
            raise AttnlabError("cannot show attention for an empty sentence")
        hyp = self.translate_ids([src_ids], beam)[0]
        src = pad_sources([src_ids])  # (1,S)
        tgt_in = torch.tensor([[BOS, *hyp]])  # (1,T)
        memory = self.model.encode(src, need_weights=True)
        out = self.model.decode(tgt_in, memory=memory, need_weights=True)
        stack = lambda ws: torch.stack([w[0] for w in ws]).float()  # L × (1,H,·,·) -> (L,H,·,·)
        return AttentionMaps(
            source=self.tokenizer.src_pieces(src_ids),
            target=self.tokenizer.tgt_pieces([*hyp, EOS]),
            translation=self.tokenizer.decode_tgt([hyp])[0],
            encoder=stack(memory.attention), decoder=stack(out.self_attention), cross=stack(out.cross_attention),
        )
