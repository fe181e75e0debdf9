"""Everything a training run needs before its first step, prepared in one place: the training and dev
pairs, the subword tokenizer (trained on the training pairs, or loaded when resuming), the config with
the vocabulary size filled in (and written to the run directory), the pairs encoded and cut into
token-count batches, and the model, optionally started from Word2Vec vectors. `attnlab.train` then
only trains what it is given.

The loaded config is never changed in place: the vocabulary size goes into a copy
(`dataclasses.replace`). Subword regularisation (Kudo 2018; `train.subword_alpha`) re-samples the
training pairs' segmentation each epoch, seeded by (seed, epoch), so a resumed run sees the same batches.
A word list (`data.dictionary`, CC-CEDICT's training headwords) can join the training pairs as extra
short pairs, and more sentence pairs (`data.extra`, e.g. back-translations) after them; the tokenizer is
trained on the `data.train` sentences alone either way.

A model of both directions (`bidirectional = true`) trains on every pair twice, as (source, target) and
reversed, each started by the tag of its target language, in one set of batches; its dev pairs are scored
in `direction` only.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from attnlab import checkpoint
from attnlab.config import Config
from attnlab.data.batching import make_batches
from attnlab.data.parallel import ParallelData, load_dictionary, load_pairs
from attnlab.distributed import Distributed
from attnlab.errors import AttnlabError
from attnlab.model import Seq2SeqTransformer
from attnlab.tokenizer import BOS, Tokenizer

log = logging.getLogger(__name__)


@dataclass
class EncodedData:
    src: list[list[int]]  # source ids per example
    tgt: list[list[int]]  # target ids per example (no <bos>/<eos>)
    batches: list[list[int]]  # example indices per batch
    start: list[int] | None = None  # the decoder's first id per example (None: <bos> for all)

    def batch(self, idx: Sequence[int]) -> tuple[list[list[int]], list[list[int]], list[int] | None]:
        """(sources, targets, start ids or None) of the examples `idx`: `collate`'s arguments."""
        start = None if self.start is None else [self.start[i] for i in idx]
        return [self.src[i] for i in idx], [self.tgt[i] for i in idx], start


def encode_pairs(data: ParallelData, tokenizer: Tokenizer, max_len: int, max_tokens: int,
                 sample_alpha: float = 0.0, rng: random.Random | None = None, *,
                 start: int | None = None, reverse_start: int | None = None) -> EncodedData:
    """Encode the pairs (sampled segmentations with sample_alpha > 0, drawn with `rng`), drop those
    empty or longer than `max_len` subwords, and batch the rest. `start`: the decoder's first id for every
    example (None: <bos>); with `reverse_start` (a joint vocabulary) each pair is also an example reversed,
    (target, source), started by that id."""
    src = tokenizer.encode_src(data.sources, sample_alpha, rng)
    tgt = tokenizer.encode_tgt(data.targets, sample_alpha, rng)
    keep = [i for i in range(len(src)) if 0 < len(src[i]) <= max_len and 0 < len(tgt[i]) <= max_len]
    if len(keep) < len(src):
        log.info("%s: skipped %d pairs longer than %d subwords", data.origin, len(src) - len(keep), max_len)
    if not keep:
        raise AttnlabError(f"no usable sentence pairs in {data.origin}")
    src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
    starts = None if start is None else [start] * len(src)
    if reverse_start is not None:
        if not tokenizer.joint:
            raise AttnlabError("training both directions needs a joint vocabulary (tokenizer.joint = true)")
        src, tgt = src + tgt, tgt + src
        starts = [start if start is not None else BOS] * len(keep) + [reverse_start] * len(keep)
    batches = make_batches([(len(s), len(t) + 1) for s, t in zip(src, tgt)], max_tokens)
    return EncodedData(src, tgt, batches, starts)


class TrainingBatches:
    """The training pairs, encoded for each epoch: once for the whole run, or with subword sampling
    (`alpha` > 0) a new sampled segmentation each epoch, seeded by (seed, epoch)."""

    def __init__(self, data: ParallelData, tokenizer: Tokenizer, *, max_len: int, max_tokens: int,
                 alpha: float = 0.0, seed: int = 1, start: int | None = None,
                 reverse_start: int | None = None) -> None:
        self.data, self.tokenizer, self.max_len, self.max_tokens = data, tokenizer, max_len, max_tokens
        self.alpha, self.seed = alpha, seed
        self.starts = dict(start=start, reverse_start=reverse_start)  # `encode_pairs`'s start ids
        self.current = encode_pairs(data, tokenizer, max_len, max_tokens, **self.starts)  # the latest handed out
        self._epoch = -1  # the epoch whose sampled segmentation `current` holds (alpha > 0)

    def epoch(self, epoch: int) -> EncodedData:
        if self.alpha > 0 and self._epoch != epoch:
            rng = random.Random(self.seed * 1_000_003 + epoch + 1)
            self.current = encode_pairs(self.data, self.tokenizer, self.max_len, self.max_tokens, self.alpha, rng,
                                        **self.starts)
            self._epoch = epoch
        return self.current


@dataclass
class PreparedRun:
    cfg: Config  # the config as loaded, with model.vocab_size set from the tokenizer
    tokenizer: Tokenizer
    train: TrainingBatches
    dev_data: ParallelData  # dev pairs as text (references for dev BLEU)
    dev: EncodedData  # dev pairs encoded, every length kept
    model: Seq2SeqTransformer  # on the run's device, in its initial (or Word2Vec-started) state
    resume_from: Path | None  # the checkpoint --resume continues from; None: start at step 0


def prepare_run(cfg: Config, run_dir: Path, dist: Distributed, resume: bool = False) -> PreparedRun:
    """Data, tokenizer, written config, encoded batches and model of a run. With `resume`, the run
    directory's tokenizer is kept; without an intact checkpoint (killed before the first one) the run
    starts afresh. Rank 0 alone trains the tokenizer and writes files; the other ranks wait for it."""
    t = cfg.train
    train_data = load_pairs(cfg.data.train, cfg.direction)
    dev_data = load_pairs(cfg.data.dev, cfg.direction)
    extra = load_pairs(cfg.data.extra, cfg.direction) if cfg.data.extra else None  # read before the tokenizer's minute
    tok_dir = run_dir / checkpoint.TOKENIZER_DIR
    resume_from = checkpoint.latest_checkpoint(run_dir) if resume else None
    if resume_from is None and dist.main:
        log.info("training the %s tokenizer (%d subwords) on %d pairs", cfg.tokenizer.model_type,
                 cfg.tokenizer.vocab_size, len(train_data))
        Tokenizer.train(train_data.pairs, cfg.tokenizer, tok_dir, seed=t.seed, language_tags=cfg.bidirectional)
    dist.barrier()
    tokenizer = Tokenizer.load(tok_dir)
    if cfg.bidirectional and not tokenizer.language_tags:
        raise AttnlabError(f"{tok_dir} has no language tags: it belongs to a model of one direction")
    start, reverse_start = ((tokenizer.start_id(cfg.tgt_lang), tokenizer.start_id(cfg.src_lang))
                            if cfg.bidirectional else (None, None))
    if cfg.data.dictionary:
        train_data = with_dictionary(train_data, cfg)
    if extra is not None:
        train_data = joined(train_data, extra.pairs, extra.origin, "pairs")
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, vocab_size=tokenizer.vocab_size))
    if dist.main:
        checkpoint.save_config(run_dir, cfg)
    batches = TrainingBatches(train_data, tokenizer, max_len=cfg.data.max_tokens_per_sentence,
                              max_tokens=t.max_tokens, alpha=t.subword_alpha, seed=t.seed,
                              start=start, reverse_start=reverse_start)
    dev = encode_pairs(dev_data, tokenizer, 10**9, t.max_tokens, start=start)
    torch.manual_seed(t.seed)  # the initial weights (and, until a checkpoint's RNG replaces it, dropout)
    model = Seq2SeqTransformer(cfg.model).to(dist.device)
    if t.init_embeddings and resume_from is None:
        init_embeddings(model, tokenizer, t.init_embeddings, t.seed, log_report=dist.main)
    return PreparedRun(cfg, tokenizer, batches, dev_data, dev, model, resume_from)


def with_dictionary(train_data: ParallelData, cfg: Config) -> ParallelData:
    """The training pairs followed by the word pairs of `data.dictionary` (`data.dictionary_scope`:
    headwords found in the training sentences, or all)."""
    zh = train_data.sources if cfg.src_lang == "zh" else train_data.targets
    words = load_dictionary(cfg.data.dictionary, cfg.direction,
                            zh if cfg.data.dictionary_scope == "corpus" else None)
    return joined(train_data, words, cfg.data.dictionary, "word pairs")


def joined(data: ParallelData, pairs: list[tuple[str, str]], origin: str, what: str) -> ParallelData:
    """`data` followed by `pairs` read from `origin` (logged as `what`)."""
    log.info("%s: %d %s join the %d training pairs", origin, len(pairs), what, len(data))
    return dataclasses.replace(data, pairs=data.pairs + pairs, origin=f"{data.origin} + {origin}")


def init_embeddings(model: Seq2SeqTransformer, tokenizer: Tokenizer, spec: str, seed: int,
                    log_report: bool = True) -> None:
    """Start the embedding rows from Word2Vec vectors (`attnlab.word2vec.init_embeddings`); `spec` is
    a comma-separated list of vector folders."""
    from attnlab.word2vec.init_embeddings import init_embedding, load_vector_folders

    vectors = load_vector_folders(spec)
    m = model
    sides = [(m.src_embed, tokenizer.src)] if m.src_embed is m.tgt_embed else [(m.src_embed, tokenizer.src),
                                                                              (m.tgt_embed, tokenizer.tgt)]
    for emb, proc in sides:
        pieces = [proc.id_to_piece(i) for i in range(proc.get_piece_size())]
        report = init_embedding(emb.weight, vectors, pieces, proc.encode, seed=seed)
        if log_report:
            log.info("embeddings from %s: %s", spec, report)
