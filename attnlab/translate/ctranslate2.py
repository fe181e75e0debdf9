"""The CTranslate2 engine: a folder written by `attnlab export ctranslate2`, each batch decoded by
`ctranslate2.Translator.translate_batch` inside `TranslatorBase`'s text pipeline.

Decoding follows attnlab's options (`decode` table of the config):
    output length limit  `attnlab.decoding.output_limit`, per sentence: a batch holds sentences of one
                         limit, passed as `max_decoding_length`
    <pad> and <bos>      never emitted (`suppress_sequences`)
    empty output         allowed (`min_decoding_length = 0`)
so greedy outputs equal attnlab's `greedy_search` token for token. Beam search differs in one respect:
CTranslate2 divides a finished hypothesis's log-probability by length^α, attnlab by GNMT's ((5 + n) / 6)^α.
With α = 0 both keep the same candidates and pick the same best hypothesis, up to CTranslate2 renormalising
the probabilities once <pad> and <bos> are removed (attnlab leaves their tiny share out).

Reference: CTranslate2 documentation, "Translation" (`Translator.translate_batch` options).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attnlab import checkpoint
from attnlab.config import Config
from attnlab.decoding import DecodeOptions, output_limit
from attnlab.errors import AttnlabError
from attnlab.export.ctranslate2 import MODEL_FILE
from attnlab.tokenizer import BOS, PAD, SPECIALS, UNK, Tokenizer
from attnlab.translate.base import TranslatorBase

try:
    import ctranslate2
except ImportError:
    raise AttnlabError("the ctranslate2 engine needs the ctranslate2 package: pip install ctranslate2") from None

class CT2Translator(TranslatorBase):
    """Translates with a CTranslate2 model exported from an attnlab run."""

    one_limit = True

    def __init__(self, cfg: Config, tokenizer: Tokenizer, engine: ctranslate2.Translator) -> None:
        super().__init__(cfg, tokenizer)
        self.engine = engine
        self._src_piece = tokenizer.src.id_to_piece
        self._tgt_id = {tokenizer.tgt.id_to_piece(i): i for i in range(tokenizer.tgt.get_piece_size())}

    @classmethod
    def load(cls, model_dir: str | Path, threads: int = 0, compute_type: str = "default") -> CT2Translator:
        """threads: CTranslate2 intra-op threads (0: its default). compute_type: e.g. "int8" or "float32"."""
        cfg, tokenizer = checkpoint.load_export(model_dir, MODEL_FILE, "a CTranslate2", "ctranslate2")
        try:
            engine = ctranslate2.Translator(str(model_dir), device="cpu", compute_type=compute_type,
                                            inter_threads=1, intra_threads=threads)
        except (RuntimeError, ValueError) as e:
            raise AttnlabError(f"CTranslate2 cannot load {model_dir}: {e}") from None
        return cls(cfg, tokenizer, engine)

    def translate_batch(self, src_ids: Sequence[Sequence[int]], opts: DecodeOptions,
                        limit: int | None = None) -> list[list[int]]:
        """One batch of non-empty tokenized sentences sharing one output limit (default: the first's) -> ids."""
        results = self.engine.translate_batch(
            [[self._src_piece(i) for i in ids] for ids in src_ids],
            beam_size=opts.beam, length_penalty=opts.length_penalty,
            max_decoding_length=output_limit(len(src_ids[0]), opts) if limit is None else limit,
            min_decoding_length=0, max_input_length=0, suppress_sequences=[[SPECIALS[PAD]], [SPECIALS[BOS]]],
        )
        return [[self._tgt_id.get(piece, UNK) for piece in r.hypotheses[0]] for r in results]
