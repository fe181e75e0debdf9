"""Attention heatmaps with the real subword tokens on both axes: one head, or every head of a layer
plus their average.

The weights come from `Translator.attention` (the readable attention path, which returns them):
row t of a map is one query position, and each row sums to 1 over the keys.

    cross    rows: target pieces produced (ending with <eos>);  columns: source pieces
    encoder  rows and columns: source pieces
    decoder  rows: target pieces produced;  columns: the decoder inputs (<bos>, then the target shifted right)

The same data as an interactive page (head selector, hover highlighting): attention_html.py.

Shape letters: L layers, H heads, Q query positions, K key positions, P panels drawn.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from attnlab.errors import AttnlabError
from attnlab.translate.pytorch import AttentionMaps
from attnlab.viz.figure import Saved, cjk, new_figure, save

log = logging.getLogger(__name__)

KINDS = ("cross", "encoder", "decoder")
CELL = 0.28  # inches per token


@dataclass
class AttentionPicture:
    """What an attention picture drew."""

    kind: str  # cross, encoder or decoder
    layer: int  # the layer drawn, counted from 0
    heads: list[int]  # the heads of the panels, in order (the average panel is not listed)
    weights: np.ndarray  # (P, Q, K) each head panel's matrix, read back from the drawn image
    average: np.ndarray | None  # (Q, K) the mean over all heads, drawn as the last panel (None for one head)
    queries: list[str]  # Q row labels
    keys: list[str]  # K column labels
    saved: Saved | None = None


def select(maps: AttentionMaps, kind: str) -> tuple[np.ndarray, list[str], list[str]]:
    """The (L, H, Q, K) weights of one kind of attention with its row and column labels."""
    if kind == "cross":
        return maps.cross.numpy(), list(maps.target), list(maps.source)
    if kind == "encoder":
        return maps.encoder.numpy(), list(maps.source), list(maps.source)
    if kind == "decoder":
        return maps.decoder.numpy(), list(maps.target), [maps.start, *maps.target[:-1]]
    raise AttnlabError(f"unknown attention kind {kind!r}; choose one of {', '.join(KINDS)}")


def source_text(maps: AttentionMaps) -> str:
    """The source sentence as its pieces spell it (the normalised input the model read)."""
    return "".join(maps.source).replace("▁", " ").strip()


def checked_index(value: int, count: int, what: str) -> int:
    """A 0-based index that may count from the end (-1 is the last); out of range is an error."""
    if not -count <= value < count:
        raise AttnlabError(f"{what} {value} does not exist: the model has {count} (0 .. {count - 1}, or -1 for the last)")
    return value % count


def _heatmap(ax: Axes, matrix: np.ndarray, queries: list[str], keys: list[str], title: str, kind: str) -> np.ndarray:
    """Draw one (Q, K) map on ax; return the array the image holds."""
    im = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0, aspect="equal", interpolation="nearest")
    ax.set_xticks(range(len(keys)), keys, rotation=90, fontsize=8, **cjk())
    ax.set_yticks(range(len(queries)), queries, fontsize=8, **cjk())
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("source" if kind != "decoder" else "decoder input", fontsize=8)
    ax.set_ylabel("target" if kind != "encoder" else "source", fontsize=8)
    return np.array(np.ma.getdata(im.get_array()), dtype=np.float32)


def attention_figure(maps: AttentionMaps, kind: str = "cross", layer: int = -1,
                     head: int | None = None) -> tuple[Figure, AttentionPicture]:
    """One head's heatmap when `head` is given, else a grid of every head of `layer` and their average."""
    weights, queries, keys = select(maps, kind)  # (L,H,Q,K)
    n_layers, n_heads = weights.shape[:2]
    layer = checked_index(layer, n_layers, "layer")
    heads = [checked_index(head, n_heads, "head")] if head is not None else list(range(n_heads))
    panels = len(heads) + (head is None)  # the average is one more panel
    cols = min(panels, 3)
    rows = math.ceil(panels / cols)
    pw, ph = max(2.4, CELL * len(keys) + 1.2), max(2.2, CELL * len(queries) + 1.0)  # one panel, inches
    fig = new_figure(max(4.4, cols * pw + 0.8), rows * ph + 0.4)  # wide enough for the title
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    drawn = []
    for ax, h in zip(axes, heads):
        drawn.append(_heatmap(ax, weights[layer, h], queries, keys, f"layer {layer} head {h}", kind))
    average = None
    if head is None:
        average = _heatmap(axes[len(heads)], weights[layer].mean(axis=0), queries, keys,
                           f"layer {layer}, mean of {n_heads} heads", kind)
    for ax in axes[panels:]:
        ax.set_axis_off()
    fig.colorbar(axes[0].images[0], ax=list(axes[:panels]), shrink=0.6, label="attention weight")
    fig.suptitle(f"{kind} attention: {source_text(maps)} → {maps.translation}", fontsize=10, **cjk())
    return fig, AttentionPicture(kind, layer, heads, np.stack(drawn), average, queries, keys)


def plot_attention(maps: AttentionMaps, out: str | Path, kind: str = "cross", layer: int = -1,
                   head: int | None = None) -> AttentionPicture:
    """Draw `attention_figure` into `out` (.png or .svg)."""
    fig, picture = attention_figure(maps, kind, layer, head)
    picture.saved = save(fig, out)
    return picture
