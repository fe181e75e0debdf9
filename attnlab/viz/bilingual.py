"""The bilingual map: Chinese and English words of an aligned space in one 2-D picture.

Owns `plot_bilingual`: after alignment (attnlab/align, Procrustes as in Conneau et al. 2018) both
languages share one coordinate system, so one PCA of the drawn words shows them together; each
dictionary pair is joined by a line, and a short line means the mapping put a word next to its
translation (the picture of Mikolov et al. 2013, "Exploiting Similarities among Languages for
Machine Translation", figure 1). Drawn with matplotlib's Agg canvas (no pyplot) and the CJK font
that attnlab/viz/fonts.py finds for every picture.

Shapes: N drawn words, D dimensions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnlab.errors import AttnlabError
from attnlab.viz.fonts import use_cjk_font

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
    explained: tuple[float, float]  # share of the drawn words' variance on the two axes
    out: Path  # the PNG (or SVG) written


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """First two principal components of the rows: (N, D) -> ((N, 2), variance shares); each axis is
    signed so that its largest loading is positive (the same words give the same picture)."""
    if x.shape[0] < 2:
        raise AttnlabError(f"a 2-D map needs at least 2 words, got {x.shape[0]}")
    centred = x - x.mean(axis=0)  # (N, D)
    _, s, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)  # vt: (min(N, D), D)
    axes = vt[:2]  # (2, D)
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    xy = centred @ axes.T  # (N, 2)
    if xy.shape[1] < 2:
        xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    var = s**2 / max(float(np.sum(s**2)), 1e-12)
    return xy.astype(np.float32), (float(var[0]), float(var[1]) if len(var) > 1 else 0.0)


def plot_bilingual(space, pairs: list[tuple[str, str]], out: str | Path, *, max_pairs: int = 40,
                   extra_src: list[str] = (), extra_tgt: list[str] = (), title: str | None = None,
                   size: tuple[float, float] = (10.0, 8.0)) -> BilingualMap:
    """Draw the words of `pairs` (source, target) from an aligned space (attnlab.align.space.AlignedSpace)
    in one PCA map, each pair joined by a line, plus `extra_src`/`extra_tgt` words without lines.

    Pairs with a word missing from the space are skipped (and logged); at most `max_pairs` are drawn.
    Writes `out` (.png or .svg) and returns the coordinates it drew.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

    family = use_cjk_font()  # fail early, before any work, when no CJK font can be found
    usable = [(s, t) for s, t in pairs if s in space.src.index and t in space.tgt.index]
    if len(usable) < len(pairs):
        log.warning("%d of %d pairs have a word outside the aligned vocabularies; not drawn",
                    len(pairs) - len(usable), len(pairs))
    usable = usable[:max_pairs]
    src_words = list(dict.fromkeys([s for s, _ in usable] + [w for w in extra_src if w in space.src.index]))
    tgt_words = list(dict.fromkeys([t for _, t in usable] + [w for w in extra_tgt if w in space.tgt.index]))
    vectors = np.concatenate([space.src.vectors[[space.src.index[w] for w in src_words]].reshape(-1, space.src.dim),
                              space.tgt.vectors[[space.tgt.index[w] for w in tgt_words]].reshape(-1, space.tgt.dim)])
    xy, explained = pca_2d(vectors)  # (Ns + Nt, 2)
    src_xy, tgt_xy = xy[:len(src_words)], xy[len(src_words):]
    s_row, t_row = {w: i for i, w in enumerate(src_words)}, {w: i for i, w in enumerate(tgt_words)}
    lines = [(s_row[s], t_row[t]) for s, t in usable]

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    prop = FontProperties(family=family, size=10)
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
                        fontproperties=prop)
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.0f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.0f}% of variance)")
    ax.set_title(title or f"{langs[0]} and {langs[1]} words in the aligned space; lines join dictionary pairs")
    ax.legend(loc="best", prop=prop)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="svg" if out.suffix.lower() == ".svg" else "png")
    return BilingualMap(src_words, tgt_words, src_xy, tgt_xy, lines, explained, out)
