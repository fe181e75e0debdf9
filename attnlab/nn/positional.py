"""Sinusoidal positional encoding (Vaswani et al. 2017, section 3.5), added to the token embeddings.

PE[pos, 2i] = sin(pos / 10000^(2i / d_model)),   PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))
Sin and cos are interleaved along the feature axis, as in the formula. The table grows on demand,
so any sequence length works.

Shape letters: T positions, D model width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


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


class SinusoidalPositionalEncoding(nn.Module):
    """Adds PE[offset : offset + T] to x (B, T, D)."""

    def __init__(self, d_model: int, max_positions: int = 1024) -> None:
        super().__init__()
        self.d_model = d_model
        self.register_buffer("table", sinusoidal_table(max_positions, d_model), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        return x + self.rows(offset, x.size(1)).to(x.dtype)

    def rows(self, offset: int, length: int = 1) -> Tensor:
        """PE[offset : offset + length], (T, D)."""
        end = offset + length
        if end > self.table.size(0):  # grow for long inputs: any length works
            self.table = sinusoidal_table(max(end, 2 * self.table.size(0)), self.d_model).to(self.table.device)
        return self.table[offset:end]
