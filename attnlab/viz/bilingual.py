"""The bilingual map: Chinese and English words of an aligned space in one 2-D picture.

Owns `plot_bilingual`: after alignment (attnlab/align: Procrustes as in Conneau et al. 2018, or a
jointly trained space) both languages share one coordinate system, so one linear projection shows
them together; each dictionary pair is joined by a line, and a short line means the space put a word
next to its translation (the picture of Mikolov et al. 2013, "Exploiting Similarities among
Languages for Machine Translation", figure 1).

The two axes are the principal axes of the pairs' midpoints (x_zh + x_en) / 2: the directions along
which the drawn pairs' meanings differ most. A PCA of all the drawn words instead spends an axis on
whatever still separates the two languages' words and draws every pair apart, even in a space whose
nearest neighbours are right. Words are projected onto these axes, nothing else is changed, so a
line's length is the part of the pair's difference that lies in that plane. Drawn, with the CJK font,
and saved as every picture is (viz/figure.py).

Shapes: N drawn words, D dimensions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnlab.viz.embeddings import pca_axes
from attnlab.viz.figure import cjk, new_figure, save

log = logging.getLogger(__name__)

SRC_COLOR, TGT_COLOR, LINE_COLOR = "tab:red", "tab:blue", "0.6"


@dataclass
class BilingualMap:
    """What `plot_bilingual` drew."""

    src_words: list[str]  # source (Chinese) words, in drawing order
    tgt_words: list[str]  # target (English) words
    src_xy: np.ndarray  # (Ns, 2) their 2-D coordinates
    tgt_xy: np.ndarray  # (Nt, 2)
    lines: list[tuple[int, int]]  # (row in src_words, row in tgt_words) of each pair joined by a line
    explained: tuple[float, float]  # share of the pair midpoints' variance on the two axes
    out: Path  # the PNG (or SVG) written


def plot_bilingual(space, pairs: list[tuple[str, str]], out: str | Path, *, max_pairs: int = 40,
                   extra_src: list[str] = (), extra_tgt: list[str] = (), title: str | None = None,
                   size: tuple[float, float] = (10.0, 8.0)) -> BilingualMap:
    """Draw the words of `pairs` (source, target) from an aligned space (attnlab.align.space.AlignedSpace)
    on the principal axes of the pairs' midpoints, each pair joined by a line, plus `extra_src`/
    `extra_tgt` words without lines (projected on the same axes; with fewer than 2 pairs the axes are
    those of all the drawn words).

    Pairs with a word missing from the space are skipped (and logged); at most `max_pairs` are drawn.
    Writes `out` (.png or .svg) and returns the coordinates it drew.
    """
    fig = new_figure(*size)  # first: no CJK font fails before any work
    usable = [(s, t) for s, t in pairs if s in space.src.index and t in space.tgt.index]
    if len(usable) < len(pairs):
        log.warning("%d of %d pairs have a word outside the aligned vocabularies; not drawn",
                    len(pairs) - len(usable), len(pairs))
    usable = usable[:max_pairs]
    src_words = list(dict.fromkeys([s for s, _ in usable] + [w for w in extra_src if w in space.src.index]))
    tgt_words = list(dict.fromkeys([t for _, t in usable] + [w for w in extra_tgt if w in space.tgt.index]))
    src_vecs = space.src.vectors[[space.src.index[w] for w in src_words]].reshape(-1, space.src.dim)  # (Ns, D)
    tgt_vecs = space.tgt.vectors[[space.tgt.index[w] for w in tgt_words]].reshape(-1, space.tgt.dim)  # (Nt, D)
    s_row, t_row = {w: i for i, w in enumerate(src_words)}, {w: i for i, w in enumerate(tgt_words)}
    lines = [(s_row[s], t_row[t]) for s, t in usable]
    vectors = np.concatenate([src_vecs, tgt_vecs])  # (Ns + Nt, D)
    midpoints = np.stack([(src_vecs[i] + tgt_vecs[j]) / 2 for i, j in lines]) if len(lines) >= 2 else vectors  # (L, D)
    mean, axes, explained = pca_axes(midpoints)  # (D,), (2, D)
    xy = (vectors - mean) @ axes.T  # (Ns + Nt, 2)
    src_xy, tgt_xy = xy[:len(src_words)], xy[len(src_words):]

    ax = fig.add_subplot()
    for i, j in lines:
        ax.plot(*zip(src_xy[i], tgt_xy[j]), color=LINE_COLOR, linewidth=0.8, zorder=1)
    langs = getattr(space, "langs", ("zh", "en"))
    ax.scatter(src_xy[:, 0], src_xy[:, 1], s=14, color=SRC_COLOR, zorder=2, label=langs[0])
    ax.scatter(tgt_xy[:, 0], tgt_xy[:, 1], s=14, color=TGT_COLOR, zorder=2, label=langs[1])
    # Chinese labels below-left of their point, English above-right, so a pair that meets stays legible
    for words, pts, color, (dx, dy, ha, va) in ((src_words, src_xy, SRC_COLOR, (-3, -3, "right", "top")),
                                                (tgt_words, tgt_xy, TGT_COLOR, (3, 3, "left", "bottom"))):
        for w, (x, y) in zip(words, pts):
            ax.annotate(w, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, color=color,
                        fontsize=10, **cjk())
    ax.set_xlabel(f"PC1 of the pairs' midpoints ({100 * explained[0]:.0f}% of their variance)")
    ax.set_ylabel(f"PC2 of the pairs' midpoints ({100 * explained[1]:.0f}% of their variance)")
    ax.set_title(title or f"{langs[0]} and {langs[1]} words in the aligned space; lines join dictionary pairs")
    ax.legend(loc="best", fontsize=10)
    return BilingualMap(src_words, tgt_words, src_xy, tgt_xy, lines, explained, save(fig, out).path)
