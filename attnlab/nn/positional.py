"""Positional encoding: how the position of each piece enters its embedding (Vaswani et al. 2017, section 3.5).

The paper adds a fixed sinusoidal table to the scaled embeddings ("add"):

    PE[pos, 2i] = sin(pos / 10000^(2i / d_model)),   PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))

Sin and cos are interleaved along the feature axis, as in the formula; the table grows on demand, so any
sequence length works. `model.positions` chooses how x (the scaled embedding) and the table meet, so that
the positions study (`attnlab.experiments.positions`) can train each under the same budget:

    add          x + PE                       the paper: position as a bias
    multiply     x ⊙ PE                       position as a weight; sin 0 = 0 wipes half of position 0
    multiply1p   x ⊙ (1 + PE)                 a weight around 1: nothing is wiped, coordinates scaled by 0..2
    rotate       each pair (x_2i, x_2i+1) turned by the angle pos·ω_i of PE's (sin, cos) pair: x times
                 e^(i·pos·ω_i) read as complex numbers, the one multiplication that keeps every length, so
                 content is never scaled or erased, only turned (what RoPE (Su et al. 2021) does to q and k)
    learned      x + P[pos], P a trained (max_positions, D) table (BERT, GPT-2)
    none         x: no position at all; the encoder is then permutation-equivariant

Shape letters: T positions, D model width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from attnlab.config import POSITIONS

ADDITIVE = ("add", "learned", "none")  # kinds that add a table to x (none: a table of zeros)


def sinusoidal_table(length: int, d_model: int) -> Tensor:
    """(T, D) table of the paper's formula, float32."""
    if d_model % 2:
        raise ValueError(f"d_model ({d_model}) must be even for sin/cos pairs")
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(1)  # (T, 1)
    inv_freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (D/2,)
    angles = pos * inv_freq  # (T, D/2)
    table = torch.empty(length, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table.float()


def rotate_pairs(x: Tensor, pe: Tensor) -> Tensor:
    """Turn each pair (x_2i, x_2i+1) of x (…, T, D) by the angle whose (sin, cos) is PE's pair (T, D)."""
    sin, cos = pe[..., 0::2], pe[..., 1::2]  # (T, D/2)
    even, odd = x[..., 0::2], x[..., 1::2]  # (…, T, D/2)
    turned = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)  # (…, T, D/2, 2)
    return turned.flatten(-2)  # (…, T, D), pairs interleaved again


class PositionalEncoding(nn.Module):
    """Mixes position into x (B, T, D) at positions offset .. offset + T - 1, as `kind` says."""

    def __init__(self, d_model: int, max_positions: int = 1024, kind: str = "add") -> None:
        super().__init__()
        if kind not in POSITIONS:
            raise ValueError(f"positions must be one of {', '.join(POSITIONS)}, got {kind!r}")
        self.d_model, self.kind = d_model, kind
        self.register_buffer("table", sinusoidal_table(max_positions, d_model), persistent=False)
        self.learned = nn.Parameter(torch.empty(max_positions, d_model)) if kind == "learned" else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """A learned table starts at N(0, 1/2): the variance of the sinusoidal table it stands in for."""
        if self.learned is not None:
            nn.init.normal_(self.learned, std=0.5**0.5)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        return self.mix(x, self.rows(offset, x.size(-2)).to(x.dtype))

    def mix(self, x: Tensor, pe: Tensor) -> Tensor:
        """x (…, T, D) with its positions' rows pe (T, D) of `rows` (or of an exported table)."""
        if self.kind in ("add", "learned"):
            return x + pe
        if self.kind == "multiply":
            return x * pe
        if self.kind == "multiply1p":
            return x * (1 + pe)
        if self.kind == "rotate":
            return rotate_pairs(x, pe)
        return x  # none

    def rows(self, offset: int, length: int = 1) -> Tensor:
        """The rows of positions offset .. offset + length - 1, (T, D): the learned table's, or the sinusoidal one's."""
        end = offset + length
        if self.learned is not None:
            if end > self.learned.size(0):
                raise ValueError(f"learned positions stop at {self.learned.size(0)} (model.max_positions); "
                                 f"position {end - 1} asked for")
            return self.learned[offset:end]
        if end > self.table.size(0):  # grow for long inputs: any length works
            self.table = sinusoidal_table(max(end, 2 * self.table.size(0)), self.d_model).to(self.table.device)
        return self.table[offset:end]

    def additive_table(self, length: int) -> Tensor:
        """(T, D) the table added to x, for exporters whose format only adds one; other kinds are an error."""
        if self.kind not in ADDITIVE:
            raise ValueError(f"positions = {self.kind!r} is not an added table")
        if self.kind == "none":
            return torch.zeros(length, self.d_model)
        return self.rows(0, length).detach().float().clone()
