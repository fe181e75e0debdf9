"""The CTranslate2 engine: a folder written by `attnlab export ctranslate2`, each batch decoded by
`ctranslate2.Translator.translate_batch` inside `TranslatorBase`'s text pipeline.

Decoding follows attnlab's options (`decode` table of the config):
    output length limit  `attnlab.decoding.output_limit`, per sentence: a batch holds sentences of one
                         limit, passed as `max_decoding_length`
    <pad> and <bos>      never emitted (`suppress_sequences`)
    empty output         allowed (`min_decoding_length = 0`, unless the option sets one)
so greedy outputs equal attnlab's `greedy_search` token for token. The other options map to CTranslate2's own:
    n_best                    num_hypotheses
    sample topk / topp        sampling_topk = top_k / (0 and sampling_topp = top_p), sampling_temperature,
                              beam_size 1, seeded by `ctranslate2.set_random_seed(seed)` before each call,
                              on a translator started after it (CTranslate2 seeds the random generator of
                              each worker thread once, when the thread starts)
    min_decoding_length, no_repeat_ngram_size, repetition_penalty    the same names
    max_decoding_length       through `output_limit`, as above
    target prefix             target_prefix (the output limit leaves room for one token after it)
    alignment                 return_attention with the output as target_prefix: the attention CTranslate2
                              keeps, chosen at export (attnlab exports the mean of the last decoder layer's
                              heads: alignment_layer = the last layer; older exports keep its first head)
Each hypothesis's log-probability is CTranslate2's `score_batch` of it (the model's, as attnlab's `force_decode`
gives; without <eos> for an output that reached its limit), and its score that over attnlab's length penalty.

Beam search differs in one respect: CTranslate2 divides a finished hypothesis's log-probability by length^α, attnlab by GNMT's ((5 + n) / 6)^α.
With α = 0 both keep the same candidates and pick the same best hypothesis, up to CTranslate2 renormalising
the probabilities once <pad> and <bos> are removed (attnlab leaves their tiny share out).

Reference: CTranslate2 documentation, "Translation" (`Translator.translate_batch` options).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from attnlab import checkpoint
from attnlab.config import Config
import numpy as np

from attnlab.decoding import DecodeOptions, Hypothesis, length_penalty, output_limit
from attnlab.errors import AttnlabError
from attnlab.export.ctranslate2 import MODEL_FILE
from attnlab.tokenizer import BOS, EOS, PAD, SPECIALS, UNK, Tokenizer
from attnlab.translate.base import TranslatorBase

try:
    import ctranslate2
except ImportError:
    raise AttnlabError("the ctranslate2 engine needs the ctranslate2 package: pip install ctranslate2") from None

class CT2Translator(TranslatorBase):
    """Translates with a CTranslate2 model exported from an attnlab run."""

    one_limit = True
    alignments = True

    def __init__(self, cfg: Config, tokenizer: Tokenizer, engine: ctranslate2.Translator,
                 reload: Callable[[], ctranslate2.Translator] | None = None) -> None:
        """reload: a fresh translator on the same model (for seeded sampling); None: sampling is unseeded."""
        super().__init__(cfg, tokenizer)
        self.engine, self.reload = engine, reload
        self._src_piece, self._tgt_piece = tokenizer.src.id_to_piece, tokenizer.tgt.id_to_piece
        self._tgt_id = {tokenizer.tgt.id_to_piece(i): i for i in range(tokenizer.tgt.get_piece_size())}

    @classmethod
    def load(cls, model_dir: str | Path, threads: int = 0, compute_type: str = "default") -> CT2Translator:
        """threads: CTranslate2 intra-op threads (0: its default). compute_type: e.g. "int8" or "float32"."""
        cfg, tokenizer = checkpoint.load_export(model_dir, MODEL_FILE, "a CTranslate2", "ctranslate2")
        def start() -> ctranslate2.Translator:
            return ctranslate2.Translator(str(model_dir), device="cpu", compute_type=compute_type,
                                          inter_threads=1, intra_threads=threads)

        try:
            engine = start()
        except (RuntimeError, ValueError) as e:
            raise AttnlabError(f"CTranslate2 cannot load {model_dir}: {e}") from None
        return cls(cfg, tokenizer, engine, start)

    def translate_batch(self, src_ids: Sequence[Sequence[int]], opts: DecodeOptions,
                        limit: int | None = None) -> list[list[int]]:
        """One batch of non-empty tokenized sentences sharing one output limit (default: the first's) -> ids."""
        limit = output_limit(len(src_ids[0]), opts) if limit is None else limit
        results = self._engine(opts).translate_batch(self._pieces(src_ids, self._src_piece),
                                                     **self._options(opts, limit, n_best=1))
        return [self._ids(r.hypotheses[0]) for r in results]

    def _options(self, opts: DecodeOptions, limit: int, n_best: int) -> dict:
        """attnlab's decoding options as `translate_batch`'s keyword arguments (see the module docstring)."""
        sampling = {"beam_size": 1, "sampling_topk": opts.top_k if opts.sample == "topk" else 0,
                    "sampling_topp": opts.top_p if opts.sample == "topp" else 1.0,
                    "sampling_temperature": opts.temperature}
        return {"beam_size": opts.beam, "length_penalty": opts.length_penalty, "num_hypotheses": n_best,
                "max_decoding_length": limit, "min_decoding_length": opts.min_decoding_length,
                "no_repeat_ngram_size": opts.no_repeat_ngram_size, "repetition_penalty": opts.repetition_penalty,
                "max_input_length": 0, "suppress_sequences": [[SPECIALS[PAD]], [SPECIALS[BOS]]],
                **(sampling if opts.sample else {})}

    def _engine(self, opts: DecodeOptions) -> ctranslate2.Translator:
        """The translator to run: with sampling, one started after seeding (each CTranslate2 worker thread
        seeds its random generator once, as it starts)."""
        if not opts.sample or self.reload is None:
            return self.engine
        ctranslate2.set_random_seed(opts.seed)
        return self.reload()

    def hypotheses_batch(self, src_ids: Sequence[Sequence[int]], opts: DecodeOptions,
                         prefixes: Sequence[Sequence[int]] | None = None) -> list[list[Hypothesis]]:
        """One batch sharing one output limit -> opts.n_best hypotheses each, best first, scored as attnlab does."""
        limit = max([output_limit(len(src_ids[0]), opts), *(len(p) + 1 for p in prefixes or [])])
        starts = None if prefixes is None else [self._pieces([p], self._tgt_piece)[0] if p else None for p in prefixes]
        results = self._engine(opts).translate_batch(self._pieces(src_ids, self._src_piece), starts,
                                                     **self._options(opts, limit, opts.n_best), return_end_token=True)
        outputs = [[self._ids(h) for h in r.hypotheses] for r in results]
        flat = [(i, ids) for i, hyps in enumerate(outputs) for ids in hyps]
        ended = [bool(ids) and ids[-1] == EOS for _, ids in flat]
        tokens = [ids[:-1] if e else ids for (_, ids), e in zip(flat, ended)]
        scores = self.score_batch([src_ids[i] for i, _ in flat], tokens)
        hyps: list[list[Hypothesis]] = [[] for _ in src_ids]
        for (i, _), toks, e, token_scores in zip(flat, tokens, ended, scores):
            log_prob = sum(token_scores if e else token_scores[:-1])
            length = len(toks) + int(e)
            hyps[i].append(Hypothesis(toks, log_prob / length_penalty(length, opts.length_penalty), log_prob, length))
        return [sorted(h, key=lambda x: x.score, reverse=True) for h in hyps]

    def score_batch(self, src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]]) -> list[list[float]]:
        """Non-empty sources and their targets (ids) -> log P of each target token, then of <eos>."""
        results = self.engine.score_batch(self._pieces(src_ids, self._src_piece),
                                          self._pieces(tgt_ids, self._tgt_piece), max_input_length=0)
        return [list(r.log_probs) for r in results]

    def cross_attention(self, src_ids: Sequence[Sequence[int]], outputs: Sequence[Sequence[int]],
                        layer: int | None = None) -> list[np.ndarray]:
        """Per sentence, the (T+1, S) attention CTranslate2 keeps (chosen at export: the last layer's) behind a
        given output; `layer` None or the last layer."""
        last = self.cfg.model.n_decoder_layers - 1
        if layer is not None and layer not in (-1, last):
            raise AttnlabError(f"can only be the last layer ({last}) on the ctranslate2 engine (its attention was "
                               f"chosen at export), got {layer}", field="alignment_layer")
        results = self.engine.translate_batch(
            self._pieces(src_ids, self._src_piece), self._pieces(outputs, self._tgt_piece), beam_size=1,
            max_decoding_length=max(len(o) for o in outputs) + 1, min_decoding_length=0, max_input_length=0,
            return_attention=True, return_end_token=True)
        return [np.asarray(r.attention[0], dtype=np.float32) for r in results]

    def _pieces(self, ids: Sequence[Sequence[int]], piece) -> list[list[str]]:
        return [[piece(i) for i in x] for x in ids]

    def _ids(self, pieces: Sequence[str]) -> list[int]:
        return [self._tgt_id.get(p, UNK) for p in pieces]
