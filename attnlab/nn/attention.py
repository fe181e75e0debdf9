"""Scaled dot-product attention and multi-head attention, with a KV cache for decoding.

Vaswani et al. (2017), section 3.2:  Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V.
The 1/√d_k is the default `scale`; `model.attention_scale` can set another (the scaling study trains each).
Two paths compute it: `attention_readable` spells out every step and returns the weights;
`attention_fused` calls `F.scaled_dot_product_attention`. Tests check they agree (values and gradients).

Shape letters: B batch, H heads, T query length, S key length, D model width, Dh = D / H head width.
Masks are boolean and broadcastable to (B, H, T, S); True means "may attend" (as in PyTorch's SDPA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def causal_mask(t: int, s: int, device: torch.device | None = None) -> Tensor:
    """(T, S) bool: query i (the last T of S positions) may attend to keys 0 .. i + (S - T)."""
    return torch.ones(t, s, dtype=torch.bool, device=device).tril(diagonal=s - t)


def attention_readable(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, dropout_p: float = 0.0, scale: float | None = None
) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ · scale) v, step by step, scale = 1/√d_k unless given (`model.attention_scale`).

    q (B,H,T,Dh), k/v (B,H,S,Dh) -> out (B,H,T,Dh), weights (B,H,T,S)."""
    if scale is None:
        scale = 1 / math.sqrt(q.size(-1))  # the paper's: keeps q·k at unit variance
    scores = q @ k.transpose(-2, -1) * scale  # (B,H,T,S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)  # each row sums to 1 over the keys
    dropped = F.dropout(weights, p=dropout_p) if dropout_p > 0 else weights
    return dropped @ v, weights  # (B,H,T,Dh), (B,H,T,S)


def attention_fused(
    q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, dropout_p: float = 0.0, is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """The same computation through PyTorch's fused kernel (no weights returned)."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=is_causal,
                                          scale=scale)


@dataclass
class AttentionOutput:
    out: Tensor  # (B, T, D) after the output projection
    weights: Tensor | None = None  # (B, H, T, S) when requested


class KVCache:
    """Keys and values of the positions decoded so far, for one self-attention layer.

    Both live in one buffer with room for more positions (capacity doubles when full), so appending a
    position writes its columns in place instead of copying the whole cache as `torch.cat` would, and
    reordering rows (beam search) is one copy of the positions held.
    """

    def __init__(self) -> None:
        self._kv: Tensor | None = None  # (B, 2, H, capacity, Dh): keys, then values
        self.length = 0  # positions held

    @property
    def k(self) -> Tensor | None:
        """(B, H, S, Dh) keys of the S positions held (a view of the buffer)."""
        return None if self._kv is None else self._kv[:, 0, :, : self.length]

    @property
    def v(self) -> Tensor | None:
        return None if self._kv is None else self._kv[:, 1, :, : self.length]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new positions' k/v (B,H,T,Dh); return all of them (B,H,S+T,Dh)."""
        return self.append_kv(torch.stack([k, v], dim=1))

    def append_kv(self, kv: Tensor) -> tuple[Tensor, Tensor]:
        """Add the new positions' keys and values, kv (B,2,H,T,Dh); return all keys and values (B,H,S+T,Dh)."""
        end = self.length + kv.size(3)
        if self._kv is None or end > self._kv.size(3):
            b, _, h, _, dh = kv.shape
            capacity = max(end, 2 * (0 if self._kv is None else self._kv.size(3)), 16)
            grown = kv.new_empty(b, 2, h, capacity, dh)
            if self.length:
                grown[:, :, :, : self.length] = self._kv[:, :, :, : self.length]
            self._kv = grown
        self._kv[:, :, :, self.length : end] = kv
        self.length = end
        return self.k, self.v

    def select(self, index: Tensor) -> None:
        """Keep (and reorder) batch rows: index (B',) into the batch dimension."""
        if self._kv is None:
            return
        n = self.length
        kv = self._kv.new_empty(index.numel(), *self._kv.shape[1:])  # (B',2,H,capacity,Dh): the room stays
        torch.index_select(self._kv[:, :, :, :n], 0, index, out=kv[:, :, :, :n])  # copies the held positions only
        self._kv = kv


class MultiHeadAttention(nn.Module):
    """H heads of scaled dot-product attention over learned projections, then an output projection.

    Self-attention projects q, k, v from one input with a single (D, 3D) matrix; cross-attention
    projects q from the decoder and k, v from the encoder output (computed once per sentence when decoding).
    """

    def __init__(
        self, *, d_model: int, n_heads: int, dropout: float = 0.0, self_attention: bool = True, fused: bool = True,
        scale: float | None = None,
    ) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"n_heads ({n_heads}) must divide d_model ({d_model})")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.scale = 1 / math.sqrt(self.d_head) if scale is None else scale  # on q·k before the softmax
        self.dropout, self.fused, self.self_attention = dropout, fused, self_attention
        if self_attention:
            self.in_proj = nn.Linear(d_model, 3 * d_model)
        else:
            self.q_proj = nn.Linear(d_model, d_model)
            self.kv_proj = nn.Linear(d_model, 2 * d_model)
        self.out_proj = nn.Linear(d_model, d_model)

    def _heads(self, x: Tensor, n: int) -> Tensor:
        """(B, T, n*D) -> (n, B, H, T, Dh)."""
        b, t, _ = x.shape
        return x.view(b, t, n, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)

    def queries_keys(self, x: Tensor, kv: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """The queries (B,H,T,Dh) of x and the keys they meet (B,H,S,Dh): x's own (self-attention) or kv's
        (cross-attention, one memory row per row of x); what the scores q·kᵀ are made of, for analysis."""
        if self.self_attention:
            q, k, _ = self._heads(self.in_proj(x), 3)
            return q, k
        (q,) = self._heads(self.q_proj(x), 1)
        return q, kv[0]

    def project_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Cross-attention keys and values of the encoder output: (B,S,D) -> 2 × (B,H,S,Dh)."""
        k, v = self._heads(self.kv_proj(memory), 2)
        return k, v

    def forward(
        self,
        x: Tensor,
        *,
        memory: Tensor | None = None,
        kv: tuple[Tensor, Tensor] | None = None,
        mask: Tensor | None = None,
        is_causal: bool = False,
        cache: KVCache | None = None,
        need_weights: bool = False,
    ) -> AttentionOutput:
        """x (B,T,D) queries. Self-attention: keys from x (plus `cache`). Cross: from `memory` or precomputed `kv`.

        `is_causal` applies the causal mask (offset by the cached length); `mask` is any extra bool mask.
        Cross-attention memory may hold fewer rows than x, B_m = B / K: then each memory row (and mask row)
        serves K consecutive rows of x (the K beams of one sentence), attended as K·T queries of that row.
        """
        b, t, _ = x.shape
        shared = 1  # K: rows of x per memory row
        if self.self_attention:
            q, k, v = self._heads(self.in_proj(x), 3)  # each (B,H,T,Dh)
            if cache is not None:
                k, v = cache.append(k, v)  # (B,H,S,Dh), S = cached + T
        else:
            k, v = kv if kv is not None else self.project_kv(memory)
            shared = b // k.size(0)
            if shared * k.size(0) != b:
                raise ValueError(f"memory rows ({k.size(0)}) must divide query rows ({b})")
            (q,) = self._heads(self.q_proj(x).view(k.size(0), shared * t, self.d_model), 1)  # (B_m,H,K·T,Dh)
        s = k.size(2)
        if is_causal and (mask is not None or need_weights or not self.fused or s != t):
            causal = causal_mask(t, s, x.device)  # (T,S)
            mask = causal if mask is None else mask & causal
            is_causal = False
        if t == 1 and is_causal:  # one query at the end of the sequence sees every key
            is_causal = False
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights or not self.fused:
            out, weights = attention_readable(q, k, v, mask, p, self.scale)
        else:
            out = attention_fused(q, k, v, mask, p, is_causal, self.scale)
        out = out.transpose(1, 2).reshape(b, t, self.d_model)  # (B_m,H,K·T,Dh) -> (B_m,K·T,H,Dh) -> (B,T,D)
        if weights is not None and shared > 1:  # (B_m,H,K·T,S) -> (B_m,H,K,T,S) -> (B_m,K,H,T,S) -> (B,H,T,S)
            weights = weights.view(k.size(0), self.n_heads, shared, t, -1).transpose(1, 2).reshape(b, self.n_heads, t, -1)
        return AttentionOutput(self.out_proj(out), weights)
