"""Word alignments read from cross-attention: subword pieces merged back into words, each target word linked
to the source word it attends to most, printed as fast_align's `i-j` pairs (source word i, target word j,
both from 0); and `<unk>` outputs replaced by that source word.

A word is a run of pieces that sentencepiece joins: a piece starting with "▁" (a space) begins one. Chinese is
written without spaces, so a piece of Chinese characters is a word of its own, and so is a special piece. For
target word e and source word z (as `attnlab.align.lexicon.word_alignment`),
    A_word[e, z] = mean over e's pieces of the sum over z's pieces of A,
where A (T, S) is the cross-attention at the step producing each target piece, averaged over the heads of a
chosen decoder layer (or over all layers). e is linked to argmax_z A_word[e, z] (Garg et al. 2019, "Jointly
Learning to Align and Translate with Transformer Models", read alignments from attention the same way).

Shape letters: T target pieces, S source pieces, E target words, Z source words, L layers, H heads.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from attnlab.align.lexicon import word_alignment
from attnlab.tokenizer import SPECIALS

SPACE = "▁"  # sentencepiece's mark of a space before a piece
UNK_PIECE = SPECIALS[3]
UNK_SURFACE = " \u2047 "  # how sentencepiece writes <unk> in decoded text (" ⁇ ")
_CJK = re.compile("[\u2e80-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")


@dataclass(frozen=True)
class Words:
    """Pieces grouped into words."""

    text: list[str]  # (Z,) each word's text, without the space marks
    of_piece: np.ndarray  # (S,) int64: the word of each piece


def piece_words(pieces: Sequence[str]) -> Words:
    """Group subword pieces into words (see the module docstring)."""
    text: list[str] = []
    of_piece = np.zeros(len(pieces), dtype=np.int64)
    after_alone = after_space = False  # the previous piece stands alone / is a bare space
    for i, piece in enumerate(pieces):
        alone = piece in SPECIALS or bool(_CJK.search(piece))
        if not text or not after_space and (alone or after_alone or piece.startswith(SPACE)):
            text.append("")
        text[-1] += piece.replace(SPACE, "")
        of_piece[i] = len(text) - 1
        after_alone, after_space = alone, piece == SPACE
    return Words(text, of_piece)


def layer_attention(cross: Tensor, layer: int | None = None) -> np.ndarray:
    """cross (L,H,T,S) -> (T,S): the heads of `layer` averaged (None: of every layer)."""
    heads = cross.float().mean(dim=1)  # (L,T,S)
    if layer is None:
        return heads.mean(dim=0).numpy()
    if not -heads.size(0) <= layer < heads.size(0):
        raise IndexError(f"decoder layer {layer} out of range: the model has {heads.size(0)}")
    return heads[layer].numpy()


def word_attention(attn: np.ndarray, src: Words, tgt: Words) -> np.ndarray:
    """Piece attention (T,S) (rows past the target's pieces, e.g. <eos>, ignored) -> word attention (E,Z)."""
    attn = attn[: len(tgt.of_piece), : len(src.of_piece)]
    return word_alignment(attn, tgt.of_piece, src.of_piece, len(tgt.text), len(src.text))


def links(a_word: np.ndarray) -> list[tuple[int, int]]:
    """Word attention (E,Z) -> (source word, target word) links, one per target word, in target order."""
    if a_word.size == 0:
        return []
    return [(int(z), e) for e, z in enumerate(a_word.argmax(axis=1))]


def pharaoh(pairs: Sequence[tuple[int, int]]) -> str:
    """Links as fast_align (and Moses) print them: "0-0 1-2 2-1"."""
    return " ".join(f"{i}-{j}" for i, j in pairs)


def unknown_words(tgt_pieces: Sequence[str], src: Words, a_word: np.ndarray) -> list[str]:
    """For each <unk> among the target pieces, in order, the text of the source word its word attends to most."""
    of_piece = piece_words(tgt_pieces).of_piece
    return [src.text[int(a_word[of_piece[t]].argmax())] for t, piece in enumerate(tgt_pieces)
            if piece == UNK_PIECE and a_word.size]


def fill_unknowns(text: str, words: Sequence[str], spaced: bool) -> str:
    """Decoded text with each <unk> (sentencepiece's " ⁇ ") replaced by the next of `words`: between spaces for
    a language written with them (`spaced`), else joined to its neighbours (Chinese)."""
    for word in words:
        text = text.replace(UNK_SURFACE, f" {word} " if spaced else word, 1)
    return " ".join(text.split()) if spaced else text.strip()
