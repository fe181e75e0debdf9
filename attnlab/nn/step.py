"""One new target position through the decoder layers at inference: the fast twin of `DecoderLayer.forward`.

What the layers compute with a KV cache and no dropout, on (N, D) rows: each linear map is one GEMM on a
transposed (in, out) copy of its weight (about twice as fast as x @ Wᵀ for a few rows on CPU), with no
per-sublayer module or dropout calls; the K beams of a sentence query its memory as K queries of one row.
`Seq2SeqTransformer.decode_step` runs it on a `KVCache`, and the ONNX decoder-step graph traces it with
the cache passed in and out. Tests check it against the layers' own forward, the readable reference.

Shape letters: B sentences, K beams per sentence, N = B·K rows, H heads, Dh head width, D model width,
F FFN width, S source length, T positions decoded so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.nn.layers import DecoderLayer

Norm = tuple[Tensor, Tensor, float]  # LayerNorm (weight, bias, eps)


@dataclass
class StepLayer:
    """One decoder layer's tensors: (bias, weight) pairs with weights transposed to (in, out)."""

    heads: int  # H
    width: int  # D
    scale: float  # on q·k before the softmax (1/√Dh in the paper)
    norm_first: bool
    self_qkv: tuple[Tensor, Tensor]  # (3D,), (D, 3D): q, k, v
    self_out: tuple[Tensor, Tensor]  # (D,), (D, D)
    cross_q: tuple[Tensor, Tensor]  # (D,), (D, D)
    cross_out: tuple[Tensor, Tensor]  # (D,), (D, D)
    ffn_in: tuple[Tensor, Tensor]  # (F,), (D, F)
    ffn_out: tuple[Tensor, Tensor]  # (D,), (F, D)
    norms: tuple[Norm, Norm, Norm]  # of the self-attention, cross-attention and FFN sublayers

    @classmethod
    def of(cls, layer: DecoderLayer, transposed: TransposedWeights) -> StepLayer:
        sa, ca, ffn, w = layer.self_attn, layer.cross_attn, layer.ffn, transposed
        return cls(
            heads=sa.n_heads, width=sa.d_model, scale=sa.scale, norm_first=layer.res_self.norm_first,
            self_qkv=(sa.in_proj.bias, w(sa.in_proj.weight)), self_out=(sa.out_proj.bias, w(sa.out_proj.weight)),
            cross_q=(ca.q_proj.bias, w(ca.q_proj.weight)), cross_out=(ca.out_proj.bias, w(ca.out_proj.weight)),
            ffn_in=(ffn.linear1.bias, w(ffn.linear1.weight)), ffn_out=(ffn.linear2.bias, w(ffn.linear2.weight)),
            norms=tuple((r.norm.weight, r.norm.bias, r.norm.eps) for r in (layer.res_self, layer.res_cross, layer.res_ffn)),
        )


def decoder_step(layers: Sequence[StepLayer], x: Tensor, memory_kv: Sequence[tuple[Tensor, Tensor]],
                 caches: Sequence, mask: Tensor | None, beams: int = 1) -> Tensor:
    """x (N,D) embedded new position -> (N,D) after every layer (before a pre-norm stack's final LayerNorm).

    memory_kv: per layer, cross-attention keys and values (B,H,S,Dh), one row per sentence; mask (B,1,1,S)
    True at real source tokens, or None when no source is padded; caches: one per layer, whose
    `append_kv(kv (N,2,H,1,Dh))` returns every key and value so far (N,H,T+1,Dh) (a `KVCache`, say).
    """
    for lw, (mem_k, mem_v), cache in zip(layers, memory_kv, caches):
        d, heads = lw.width, lw.heads  # plain ints, so that a traced graph keeps no shape of the example input
        dh = d // heads
        norm_self, norm_cross, norm_ffn = lw.norms
        # causal self-attention: the new position attends to every cached position and to itself
        h = torch.layer_norm(x, (d,), *norm_self) if lw.norm_first else x
        qkv = torch.addmm(lw.self_qkv[0], h, lw.self_qkv[1]).view(-1, 3, heads, 1, dh)  # (N,3D) -> (N,3,H,1,Dh)
        keys, values = cache.append_kv(qkv[:, 1:])  # (N,H,T+1,Dh): every position so far, this one included
        a = F.scaled_dot_product_attention(qkv[:, 0], keys, values, scale=lw.scale).view(-1, d)  # (N,H,1,Dh) -> (N,D)
        x = _residual(x, torch.addmm(lw.self_out[0], a, lw.self_out[1]), lw, norm_self)
        # cross-attention: a sentence's K beams are K queries of its memory row
        h = torch.layer_norm(x, (d,), *norm_cross) if lw.norm_first else x
        q = torch.addmm(lw.cross_q[0], h, lw.cross_q[1]).view(-1, beams, heads, dh).transpose(1, 2)  # (B,H,K,Dh)
        a = F.scaled_dot_product_attention(q, mem_k, mem_v, attn_mask=mask, scale=lw.scale)  # (B,H,K,Dh)
        a = a.transpose(1, 2).reshape(-1, d)  # (B,K,H,Dh) -> (N,D)
        x = _residual(x, torch.addmm(lw.cross_out[0], a, lw.cross_out[1]), lw, norm_cross)
        # feed-forward
        h = torch.layer_norm(x, (d,), *norm_ffn) if lw.norm_first else x
        h = torch.relu_(torch.addmm(lw.ffn_in[0], h, lw.ffn_in[1]))  # (N,F)
        x = _residual(x, torch.addmm(lw.ffn_out[0], h, lw.ffn_out[1]), lw, norm_ffn)
    return x


def _residual(x: Tensor, out: Tensor, lw: StepLayer, norm: Norm) -> Tensor:
    """The residual stream after a sublayer at inference (no dropout): x + out, then LayerNorm in post-norm."""
    if lw.norm_first:
        return x + out
    return torch.layer_norm(x + out, (lw.width,), *norm)


class TransposedWeights:
    """(in, out) copies of (out, in) weight matrices for inference, remade when a weight changes.

    A copy is reused while its weight is the same tensor with the same storage and version counter (an
    in-place update such as load_state_dict or a plain optimizer step bumps the version). torch's fused
    optimizers update weights without bumping it, so the model also calls `clear` whenever it changes
    between training and inference mode (`Seq2SeqTransformer.train`).
    """

    def __init__(self) -> None:
        self._copies: dict[int, tuple[Tensor, int, int, Tensor]] = {}  # id -> (weight, data_ptr, version, copy)

    def clear(self) -> None:
        self._copies.clear()

    def __call__(self, weight: Tensor) -> Tensor:
        hit = self._copies.get(id(weight))
        if hit is not None and hit[0] is weight and hit[1] == weight.data_ptr() and hit[2] == weight._version:
            return hit[3]
        copy = weight.detach().t().contiguous()  # (in, out)
        self._copies[id(weight)] = (weight, weight.data_ptr(), weight._version, copy)
        return copy
