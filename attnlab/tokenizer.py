"""Subword tokenizer: trains and loads sentencepiece models; text <-> ids.

Special ids are fixed for every model attnlab trains:
    0 <pad>   padding, never predicted
    1 <bos>   begins every target sequence fed to the decoder
    2 <eos>   ends every target sequence; decoding stops on it
    3 <unk>   a character the vocabulary does not cover
By default one joint zh+en model is trained on both sides of the training pairs (needed for tied
embeddings); with `joint = false` the source and target sides get one model each.

A tokenizer for a model of both directions (`bidirectional = true`) also holds the target-language tags
<2zh> and <2en>, sentencepiece control symbols: they have ids but no text ever encodes to them. The decoder
starts from the tag of the language it is to write (`start_id`) instead of <bos>.
"""

from __future__ import annotations

import io
import logging
import math
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from attnlab.config import TokenizerConfig
from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_bytes

log = logging.getLogger(__name__)

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
LANGUAGE_TAGS = {"zh": "<2zh>", "en": "<2en>"}  # the decoder's first token in a model of both directions
JOINT_FILE, SRC_FILE, TGT_FILE = "joint.model", "src.model", "tgt.model"
MAX_TRAIN_SENTENCES = 2_000_000
_SURROGATE = re.compile("[\ud800-\udfff]")  # lone UTF-16 halves: a str from a bad decoder


def encodable(text: str) -> str:
    """The text with lone surrogates (which UTF-8 cannot hold, so sentencepiece rejects) made U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _train_model(sentences: list[str], cfg: TokenizerConfig, seed: int, language_tags: bool = False) -> bytes:
    if not sentences:
        raise AttnlabError("cannot train a tokenizer on an empty corpus")
    if len(sentences) > MAX_TRAIN_SENTENCES:
        sentences = random.Random(seed).sample(sentences, MAX_TRAIN_SENTENCES)
    buf = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=buf,
            vocab_size=cfg.vocab_size,
            model_type=cfg.model_type,
            character_coverage=cfg.character_coverage,
            pad_id=PAD, bos_id=BOS, eos_id=EOS, unk_id=UNK,
            pad_piece=SPECIALS[0], bos_piece=SPECIALS[1], eos_piece=SPECIALS[2], unk_piece=SPECIALS[3],
            control_symbols=list(LANGUAGE_TAGS.values()) if language_tags else [],
            hard_vocab_limit=False,  # tiny corpora get a smaller vocabulary instead of an error
            num_threads=2,
            minloglevel=2,
        )
    except RuntimeError as e:
        raise AttnlabError(f"sentencepiece training failed: {e}") from None
    return buf.getvalue()


NBEST = 16  # segmentations that subword sampling chooses among (Kudo 2018 samples from an l-best list)


def _encode(proc: spm.SentencePieceProcessor, texts: Iterable[str], sample_alpha: float,
            rng: random.Random | None) -> list[list[int]]:
    """The most likely segmentation of each text; with sample_alpha > 0, one segmentation drawn from
    its NBEST most likely with probability ∝ P(segmentation)^alpha (subword regularisation, Kudo 2018,
    l-best sampling), using `rng`, so that a seed repeats the draw in any process."""
    texts = [encodable(t) for t in texts]
    if sample_alpha <= 0:
        return proc.encode(texts)
    if rng is None:
        raise ValueError("sampled encoding needs a random.Random")
    score = _piece_scores(proc)
    out = []
    for cands in proc.nbest_encode(texts, nbest_size=NBEST):
        if len(cands) <= 1:
            out.append(cands[0] if cands else [])
            continue
        logp = [sample_alpha * sum(score[i] for i in c) for c in cands]  # unigram: log P = Σ log p(piece)
        top = max(logp)
        out.append(rng.choices(cands, weights=[math.exp(x - top) for x in logp])[0])
    return out


def _piece_scores(proc: spm.SentencePieceProcessor) -> list[float]:
    """Each piece's log-probability in the unigram model (cached on the processor)."""
    cached = getattr(proc, "_attnlab_scores", None)
    if cached is None:
        cached = [proc.get_score(i) for i in range(proc.get_piece_size())]
        proc._attnlab_scores = cached
    return cached


class Tokenizer:
    """Source and target sentencepiece processors (the same object when the vocabulary is joint)."""

    def __init__(self, src: spm.SentencePieceProcessor, tgt: spm.SentencePieceProcessor, joint: bool) -> None:
        self.src, self.tgt, self.joint = src, tgt, joint

    @property
    def vocab_size(self) -> int:
        return max(self.src.get_piece_size(), self.tgt.get_piece_size())

    @classmethod
    def train(cls, pairs: Sequence[tuple[str, str]], cfg: TokenizerConfig, out_dir: Path, seed: int = 1,
              language_tags: bool = False) -> "Tokenizer":
        """Train on the (src, tgt) pairs and save the model file(s) into out_dir; with `language_tags` (a joint
        vocabulary only) the model also holds <2zh> and <2en>."""
        out_dir.mkdir(parents=True, exist_ok=True)
        if language_tags and not cfg.joint:
            raise AttnlabError("language tags need a joint vocabulary (tokenizer.joint = true)")
        if cfg.joint:
            model = _train_model([s for p in pairs for s in p], cfg, seed, language_tags)
            atomic_write_bytes(out_dir / JOINT_FILE, model)
        else:
            atomic_write_bytes(out_dir / SRC_FILE, _train_model([s for s, _ in pairs], cfg, seed))
            atomic_write_bytes(out_dir / TGT_FILE, _train_model([t for _, t in pairs], cfg, seed))
        return cls.load(out_dir)

    @classmethod
    def load(cls, directory: Path) -> "Tokenizer":
        def proc(name: str) -> spm.SentencePieceProcessor:
            path = directory / name
            if not path.is_file():
                raise AttnlabError(f"tokenizer model missing: {path}")
            p = spm.SentencePieceProcessor()
            try:
                p.load(str(path))
            except (OSError, RuntimeError):
                raise AttnlabError(f"tokenizer model is corrupt: {path}") from None
            if tuple(p.id_to_piece(i) for i in range(4)) != SPECIALS:
                raise AttnlabError(f"tokenizer model {path} does not have attnlab's special ids {SPECIALS}")
            return p

        if (directory / JOINT_FILE).is_file():
            joint = proc(JOINT_FILE)
            return cls(joint, joint, True)
        return cls(proc(SRC_FILE), proc(TGT_FILE), False)

    @property
    def language_tags(self) -> bool:
        """Whether the vocabulary holds the target-language tags (a model of both directions)."""
        return all(self._tag_id(lang) is not None for lang in LANGUAGE_TAGS)

    def _tag_id(self, lang: str) -> int | None:
        i = self.tgt.piece_to_id(LANGUAGE_TAGS[lang])
        return i if i != UNK and self.tgt.is_control(i) else None

    def start_id(self, tgt_lang: str | None = None) -> int:
        """The decoder's first token: <bos>, or with `tgt_lang` the tag of that target language."""
        if tgt_lang is None:
            return BOS
        if tgt_lang not in LANGUAGE_TAGS:
            raise AttnlabError(f"no language tag for {tgt_lang!r} (known: {', '.join(LANGUAGE_TAGS)})")
        tag = self._tag_id(tgt_lang)
        if tag is None:
            raise AttnlabError(f"this tokenizer has no {LANGUAGE_TAGS[tgt_lang]} tag: it was not trained for a model "
                               "of both directions")
        return tag

    def encode_src(self, texts: Iterable[str], sample_alpha: float = 0.0,
                   rng: random.Random | None = None) -> list[list[int]]:
        return _encode(self.src, texts, sample_alpha, rng)

    def encode_tgt(self, texts: Iterable[str], sample_alpha: float = 0.0,
                   rng: random.Random | None = None) -> list[list[int]]:
        return _encode(self.tgt, texts, sample_alpha, rng)

    def decode_tgt(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return [self.tgt.decode([i for i in seq if i >= UNK]) for seq in ids]

    def src_pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.src.id_to_piece(i) for i in ids]

    def tgt_pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.tgt.id_to_piece(i) for i in ids]

