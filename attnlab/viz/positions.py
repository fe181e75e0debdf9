"""The sinusoidal positional encoding as pictures (Vaswani et al. 2017, section 3.5).

    PE[pos, 2i] = sin(pos / 10000^(2i / d)),   PE[pos, 2i+1] = cos(pos / 10000^(2i / d))

Three panels: the (T, D) table as a heatmap; a few of its columns as waves of falling frequency; and
the dot product of every pair of positions, PE PEᵀ, which depends only on their distance:
PE[p]·PE[q] = Σ_i cos((p - q)·ω_i), the largest on the diagonal and falling off away from it.
The table is the model's own `sinusoidal_table`.

Shape letters: T positions, D encoding width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnlab.errors import AttnlabError
from attnlab.nn.positional import sinusoidal_table
from attnlab.viz.figure import Saved, new_figure, save


@dataclass
class PositionsPicture:
    """What the positional-encoding picture drew."""

    table: np.ndarray  # (T, D) the encoding, read back from the heatmap
    dims: list[int]  # the columns drawn as curves
    curves: np.ndarray  # (len(dims), T) those columns, read back from the lines
    similarity: np.ndarray  # (T, T) PE PEᵀ, read back from its heatmap
    saved: Saved | None = None


def default_dims(d: int) -> list[int]:
    """A few columns from fast to slow waves: 0 and 1 (the sin/cos pair of the fastest), then sines at d/8, d/4, 3d/8."""
    return sorted({0, 1, d // 8 // 2 * 2, d // 4 // 2 * 2, 3 * d // 8 // 2 * 2})


def plot_positions(out: str | Path, dim: int = 128, length: int = 100, dims: list[int] | None = None) -> PositionsPicture:
    """Draw the encoding of `length` positions in `dim` dimensions into `out` (.png or .svg)."""
    if dim < 2 or dim % 2 or length < 2:
        raise AttnlabError(f"positions needs an even --dim >= 2 and --length >= 2, got dim={dim}, length={length}")
    dims = default_dims(dim) if dims is None else dims
    if any(not 0 <= c < dim for c in dims):
        raise AttnlabError(f"dimensions {dims} must lie in 0 .. {dim - 1}")
    table = sinusoidal_table(length, dim).numpy()  # (T,D)
    fig = new_figure(12, 4)
    ax_table, ax_waves, ax_sim = fig.subplots(1, 3, width_ratios=[1.2, 1.3, 1])
    im = ax_table.imshow(table, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax_table.set(title=f"PE: {length} positions × {dim} dimensions", xlabel="dimension (even: sin, odd: cos)", ylabel="position")
    fig.colorbar(im, ax=ax_table, shrink=0.8)
    lines = [ax_waves.plot(range(length), table[:, c], label=f"dim {c} ({'sin' if c % 2 == 0 else 'cos'})")[0] for c in dims]
    ax_waves.set(title="a few dimensions: waves of falling frequency", xlabel="position", ylabel="value")
    ax_waves.legend(fontsize=8, loc="lower left")
    similarity = table @ table.T  # (T,T)
    sim = ax_sim.imshow(similarity, cmap="magma", interpolation="nearest")
    ax_sim.set(title="PE[p] · PE[q]: a function of p − q", xlabel="position q", ylabel="position p")
    fig.colorbar(sim, ax=ax_sim, shrink=0.8)
    picture = PositionsPicture(
        table=np.array(np.ma.getdata(im.get_array())), dims=list(dims),
        curves=np.stack([line.get_ydata() for line in lines]), similarity=np.array(np.ma.getdata(sim.get_array())))
    picture.saved = save(fig, out)
    return picture
