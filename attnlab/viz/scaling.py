"""Why attention divides the scores by √d (Vaswani et al. 2017, section 3.2.1, footnote 4), as a picture.

For q, k with d independent components of mean 0 and variance 1, q·k = Σ_i q_i k_i has mean 0 and
variance d: the scores grow with the head width, and a softmax over large scores puts almost all its
weight on one key (entropy near 0; its gradient vanishes). Dividing by √d brings the variance back to 1
at every width, and the softmax stays spread out.

Three panels: the distribution of q·k at one width with and without 1/√d; the measured variance
against d (theory: d and 1); the mean softmax entropy of a row of scores against d (the maximum is
log K for K keys). Sampled with a fixed seed, so the picture is the same every time.

Shape letters: N sampled pairs, d width, M query rows, K keys per row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnlab.errors import AttnlabError
from attnlab.viz.figure import Saved, new_figure, save

SWEEP = (2, 4, 8, 16, 32, 64, 128, 256, 512)  # widths on the variance and entropy curves


@dataclass
class ScalingPicture:
    """What the scaling picture drew."""

    dim: int  # the width of the histogram panel
    dots: np.ndarray  # (N,) samples of q·k at `dim`, unscaled (the scaled ones are dots / √dim)
    dims: list[int]  # the widths of the curves
    var_unscaled: np.ndarray  # (len(dims),) sample variance of q·k
    var_scaled: np.ndarray  # (len(dims),) sample variance of q·k / √d
    entropy_unscaled: np.ndarray  # (len(dims),) mean softmax entropy of a row of K scores, nats
    entropy_scaled: np.ndarray  # (len(dims),) the same with 1/√d
    keys: int  # K
    saved: Saved | None = None

    @property
    def max_entropy(self) -> float:
        """log K: the entropy of a uniform softmax over K keys."""
        return math.log(self.keys)


def _dots(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """(N,) q·k for q, k ~ N(0, I_d)."""
    q = rng.standard_normal((n, d), dtype=np.float32)
    k = rng.standard_normal((n, d), dtype=np.float32)
    return np.einsum("nd,nd->n", q, k, dtype=np.float64)


def _entropy(rng: np.random.Generator, rows: int, keys: int, d: int, scale: float) -> float:
    """Mean entropy (nats) of softmax(scale · q Kᵀ) over `rows` random queries, each with K random keys."""
    q = rng.standard_normal((rows, 1, d), dtype=np.float32)
    k = rng.standard_normal((rows, keys, d), dtype=np.float32)
    scores = (q * k).sum(-1, dtype=np.float64) * scale  # (M,K)
    scores -= scores.max(axis=1, keepdims=True)
    p = np.exp(scores)
    p /= p.sum(axis=1, keepdims=True)
    return float(-(p * np.log(np.maximum(p, 1e-300))).sum(axis=1).mean())


def scaling_data(dim: int = 64, samples: int = 20000, keys: int = 32, rows: int = 400, seed: int = 0) -> ScalingPicture:
    """Sample the statistics of the picture (no drawing)."""
    if dim < 1 or samples < 2 or keys < 2 or rows < 1:
        raise AttnlabError(f"scaling needs --dim >= 1, samples >= 2, keys >= 2; got dim={dim}, samples={samples}, keys={keys}")
    rng = np.random.default_rng(seed)
    dims = sorted(set(SWEEP) | {dim})
    var_u, var_s, ent_u, ent_s = [], [], [], []
    for d in dims:
        dots = _dots(rng, samples, d)
        var_u.append(dots.var())
        var_s.append((dots / math.sqrt(d)).var())
        ent_u.append(_entropy(rng, rows, keys, d, 1.0))
        ent_s.append(_entropy(rng, rows, keys, d, 1 / math.sqrt(d)))
    return ScalingPicture(dim, _dots(rng, samples, dim), dims, np.array(var_u), np.array(var_s),
                          np.array(ent_u), np.array(ent_s), keys)


def plot_scaling(out: str | Path, dim: int = 64, samples: int = 20000, keys: int = 32, seed: int = 0) -> ScalingPicture:
    """Draw the scaling argument into `out` (.png or .svg)."""
    data = scaling_data(dim, samples, keys, seed=seed)
    fig = new_figure(15, 4.4)
    ax_hist, ax_var, ax_ent = fig.subplots(1, 3)
    scaled = data.dots / math.sqrt(dim)
    lim = 4 * math.sqrt(dim)
    bins = np.linspace(-lim, lim, 161)
    ax_hist.hist(data.dots, bins=bins, density=True, alpha=0.6, label=f"q·k (variance {data.dots.var():.1f})")
    ax_hist.hist(scaled, bins=bins, density=True, alpha=0.6, label=f"q·k / √{dim} (variance {scaled.var():.2f})")
    ax_hist.set(title=f"q·k for random q, k in {dim} dimensions", xlabel="score", ylabel="density")
    ax_hist.legend(fontsize=8)
    ax_var.loglog(data.dims, data.var_unscaled, "o-", label="q·k")
    ax_var.loglog(data.dims, data.var_scaled, "s-", label="q·k / √d")
    ax_var.loglog(data.dims, data.dims, "k:", lw=1, label="theory: d")
    ax_var.axhline(1.0, color="k", ls="--", lw=1, label="theory: 1")
    ax_var.set(title="variance of the score", xlabel="d (head width)", ylabel="variance")
    ax_var.legend(fontsize=8)
    ax_ent.semilogx(data.dims, data.entropy_unscaled, "o-", label="softmax(q·K)")
    ax_ent.semilogx(data.dims, data.entropy_scaled, "s-", label="softmax(q·K / √d)")
    ax_ent.axhline(data.max_entropy, color="k", ls="--", lw=1, label=f"uniform over {keys} keys")
    ax_ent.set(title="softmax entropy over the keys", xlabel="d (head width)", ylabel="entropy (nats)", ylim=(0, None))
    ax_ent.legend(fontsize=8)
    data.saved = save(fig, out)
    return data
