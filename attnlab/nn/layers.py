"""Position-wise feed-forward network and the encoder and decoder layers (Vaswani et al. 2017, 3.1-3.3).

Each sublayer is wrapped as post-norm, LayerNorm(x + Dropout(sublayer(x))) as in the paper, or as
pre-norm, x + Dropout(sublayer(LayerNorm(x))), when `norm_first` is set. `scale` multiplies q·k in every
attention (None: the paper's 1/√d_k).

Shape letters: B batch, T target length, S source length, D model width, F FFN width.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.nn.attention import KVCache, MultiHeadAttention
from attnlab.nn.dropout import dropout


class FeedForward(nn.Module):
    """FFN(x) = max(0, x W1 + b1) W2 + b2, applied to each position alone."""

    def __init__(self, *, d_model: int, d_ff: int, activation_dropout: float = 0.0) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.activation_dropout = activation_dropout

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.linear1(x))  # (B,T,F)
        if self.activation_dropout > 0:
            h = dropout(h, self.activation_dropout, self.training)
        return self.linear2(h)  # (B,T,D)


class _Residual(nn.Module):
    """One sublayer's residual connection, dropout and LayerNorm, in post- or pre-norm order."""

    def __init__(self, d_model: int, dropout: float, norm_first: bool) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.dropout, self.norm_first = dropout, norm_first

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        if self.norm_first:
            return x + dropout(sublayer(self.norm(x)), self.dropout, self.training)
        return self.norm(x + dropout(sublayer(x), self.dropout, self.training))


class EncoderLayer(nn.Module):
    """Self-attention over the source, then the FFN."""

    def __init__(self, *, d_model: int, n_heads: int, d_ff: int, dropout: float, attention_dropout: float,
                 activation_dropout: float, norm_first: bool, fused: bool, scale: float | None = None) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model=d_model, n_heads=n_heads, dropout=attention_dropout, fused=fused,
                                            scale=scale)
        self.ffn = FeedForward(d_model=d_model, d_ff=d_ff, activation_dropout=activation_dropout)
        self.res_attn = _Residual(d_model, dropout, norm_first)
        self.res_ffn = _Residual(d_model, dropout, norm_first)

    def forward(self, x: Tensor, src_mask: Tensor | None, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """x (B,S,D), src_mask (B,1,1,S) True at real tokens -> (B,S,D) and weights (B,H,S,S) if asked."""
        weights = None

        def attend(h: Tensor) -> Tensor:
            nonlocal weights
            a = self.self_attn(h, mask=src_mask, need_weights=need_weights)
            weights = a.weights
            return a.out

        x = self.res_attn(x, attend)
        return self.res_ffn(x, self.ffn), weights


class DecoderLayer(nn.Module):
    """Causal self-attention over the target, cross-attention over the encoder output, then the FFN."""

    def __init__(self, *, d_model: int, n_heads: int, d_ff: int, dropout: float, attention_dropout: float,
                 activation_dropout: float, norm_first: bool, fused: bool, scale: float | None = None) -> None:
        super().__init__()
        self.self_attn = MultiHeadAttention(d_model=d_model, n_heads=n_heads, dropout=attention_dropout, fused=fused,
                                            scale=scale)
        self.cross_attn = MultiHeadAttention(
            d_model=d_model, n_heads=n_heads, dropout=attention_dropout, self_attention=False, fused=fused, scale=scale
        )
        self.ffn = FeedForward(d_model=d_model, d_ff=d_ff, activation_dropout=activation_dropout)
        self.res_self = _Residual(d_model, dropout, norm_first)
        self.res_cross = _Residual(d_model, dropout, norm_first)
        self.res_ffn = _Residual(d_model, dropout, norm_first)

    def forward(
        self,
        y: Tensor,
        memory_kv: tuple[Tensor, Tensor],
        src_mask: Tensor | None,
        tgt_mask: Tensor | None = None,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """y (B,T,D); memory_kv: cross-attention k/v (B,H,S,Dh) -> (B,T,D), self (B,H,T,T'), cross (B,H,T,S)."""
        self_w = cross_w = None

        def self_attend(h: Tensor) -> Tensor:
            nonlocal self_w
            a = self.self_attn(h, mask=tgt_mask, is_causal=True, cache=cache, need_weights=need_weights)
            self_w = a.weights
            return a.out

        def cross_attend(h: Tensor) -> Tensor:
            nonlocal cross_w
            a = self.cross_attn(h, kv=memory_kv, mask=src_mask, need_weights=need_weights)
            cross_w = a.weights
            return a.out

        y = self.res_self(y, self_attend)
        y = self.res_cross(y, cross_attend)
        return self.res_ffn(y, self.ffn), self_w, cross_w
