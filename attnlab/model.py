"""The encoder-decoder Transformer (Vaswani et al. 2017, figure 1): encode / decode / logits.

    src ids -> embed·√D + PE -> N encoder layers -> memory
    tgt ids -> embed·√D + PE -> N decoder layers (causal self-attn, cross-attn over memory) -> logits

The model only computes: training lives in `train.py`, search in `decoding.py`. Decoding one token at a
time goes through `start_decoding` (cross-attention keys/values computed once) and `decode(..., state)`
with a KV cache per decoder layer; without a state, `decode` runs the whole target in parallel.

One-token steps at inference (no gradients, no weights asked for) take a fast path, `_decode_step`: the
layers' computation written out on (N, D) rows, with GEMMs on transposed copies of the weights (x @ Wᵀ
as a plain (in, out) GEMM runs about twice as fast for a few rows on CPU) and no per-sublayer module or
dropout calls. Its readable twin is the layers' own forward; tests check that both agree.

Shape letters: B batch, S source length, T target length, D model width, V vocabulary, H heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.config import ModelConfig
from attnlab.nn.attention import KVCache
from attnlab.nn.layers import DecoderLayer, EncoderLayer
from attnlab.nn.positional import SinusoidalPositionalEncoding, sinusoidal_table


@dataclass
class Memory:
    """The encoder's output for a batch of source sentences."""

    states: Tensor  # (B, S, D)
    src_mask: Tensor  # (B, 1, 1, S) bool, True at real (non-pad) source tokens
    attention: list[Tensor] | None = None  # per encoder layer (B, H, S, S), when requested


@dataclass
class DecoderState:
    """What incremental decoding carries from step to step: cross-attention k/v and self-attention caches.

    The caches hold N = B · beams rows, sentence-major (sentence j owns rows j·K .. j·K + K - 1); the
    cross-attention k/v and the source mask hold one row per sentence, shared by its beams.
    """

    memory_kv: list[tuple[Tensor, Tensor]]  # per layer, each (B, H, S, Dh)
    src_mask: Tensor  # (B, 1, 1, S)
    caches: list[KVCache] = field(default_factory=list)
    beams: int = 1  # K: rows per sentence
    src_padded: bool = True  # whether some source row has padding (False: src_mask is all True and can be skipped)

    @property
    def length(self) -> int:
        """Target positions decoded so far."""
        return self.caches[0].length if self.caches else 0

    def expand_beams(self, beams: int) -> None:
        """Give each sentence `beams` rows (before the first step), all sharing the sentence's memory."""
        if self.beams != 1:
            raise ValueError(f"the state already has {self.beams} beams per sentence")
        index = torch.arange(self.src_mask.size(0), device=self.src_mask.device).repeat_interleave(beams)
        for cache in self.caches:
            cache.select(index)
        self.beams = beams

    def select(self, index: Tensor) -> None:
        """Keep (and reorder) rows, e.g. beams after a step or unfinished sentences: index (N',) into the N rows.

        With beams > 1, each group of K consecutive entries of index must come from one sentence (as in beam
        search, where a sentence's new beams extend its own old ones)."""
        if index.numel() % self.beams:
            raise ValueError(f"{index.numel()} rows kept is not a multiple of {self.beams} beams per sentence")
        for cache in self.caches:
            cache.select(index)
        sentences = index[:: self.beams] // self.beams  # (B',) the sentence of each group
        if sentences.numel() == self.src_mask.size(0) and torch.equal(
                sentences, torch.arange(sentences.numel(), device=sentences.device)):
            return  # the same sentences in the same order: the memory stays as it is
        self.memory_kv = [(k.index_select(0, sentences), v.index_select(0, sentences)) for k, v in self.memory_kv]
        self.src_mask = self.src_mask.index_select(0, sentences)


@dataclass
class DecoderOutput:
    hidden: Tensor  # (B, T, D) final decoder states (pass to `logits`)
    self_attention: list[Tensor] | None = None  # per layer (B, H, T, T')
    cross_attention: list[Tensor] | None = None  # per layer (B, H, T, S)


class Seq2SeqTransformer(nn.Module):
    def __init__(self, cfg: ModelConfig, pad_id: int = 0) -> None:
        super().__init__()
        self.cfg, self.pad_id = cfg, pad_id
        d = cfg.d_model
        self.src_embed = nn.Embedding(cfg.vocab_size, d, padding_idx=pad_id)
        self.tgt_embed = self.src_embed if cfg.tie_embeddings else nn.Embedding(cfg.vocab_size, d, padding_idx=pad_id)
        self.out_proj = None if cfg.tie_embeddings else nn.Linear(d, cfg.vocab_size, bias=False)
        self.positions = SinusoidalPositionalEncoding(d, cfg.max_positions)
        sizes = dict(d_model=d, n_heads=cfg.n_heads, d_ff=cfg.d_ff, dropout=cfg.dropout,
                     attention_dropout=cfg.attention_dropout, activation_dropout=cfg.activation_dropout,
                     norm_first=cfg.norm_first, fused=cfg.fused_attention)
        self.encoder = nn.ModuleList(EncoderLayer(**sizes) for _ in range(cfg.n_encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(**sizes) for _ in range(cfg.n_decoder_layers))
        # Pre-norm leaves the residual stream un-normalised: each stack ends with a LayerNorm.
        self.encoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self._transposed = _TransposedWeights()  # inference-only weight copies (see logits, _decode_step)
        self._step_plan: list[_StepLayer] | None = None  # their per-layer view, renewed by start_decoding
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform matrices, zero biases; embeddings N(0, D^-1/2) so that embed·√D has unit variance."""
        for name, p in self.named_parameters():
            if "embed" in name:
                nn.init.normal_(p, std=self.cfg.d_model**-0.5)
            elif p.dim() > 1:
                nn.init.xavier_uniform_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        with torch.no_grad():
            for emb in {self.src_embed, self.tgt_embed}:
                emb.weight[self.pad_id].zero_()

    def _embed(self, emb: nn.Embedding, ids: Tensor, offset: int = 0) -> Tensor:
        x = emb(ids) * math.sqrt(self.cfg.d_model)  # (B,T,D)
        return F.dropout(self.positions(x, offset), self.cfg.dropout, self.training)

    def encode(self, src: Tensor, need_weights: bool = False) -> Memory:
        """src (B,S) ids, right-padded with pad_id -> Memory with states (B,S,D)."""
        src_mask = (src != self.pad_id)[:, None, None, :]  # (B,1,1,S)
        x = self._embed(self.src_embed, src)
        attention = [] if need_weights else None
        for layer in self.encoder:
            x, w = layer(x, src_mask, need_weights)
            if attention is not None:
                attention.append(w)
        return Memory(self.encoder_norm(x), src_mask, attention)

    def start_decoding(self, memory: Memory) -> DecoderState:
        """Compute each layer's cross-attention keys/values once and give empty self-attention caches."""
        kv = [tuple(t.contiguous() for t in layer.cross_attn.project_kv(memory.states)) for layer in self.decoder]
        self._step_plan = None  # made again (from the still-valid weight copies) by the first fast step
        return DecoderState(kv, memory.src_mask, [KVCache() for _ in self.decoder],
                            src_padded=not bool(memory.src_mask.all()))

    def decode(
        self,
        tgt: Tensor,
        memory: Memory | None = None,
        state: DecoderState | None = None,
        tgt_pad_mask: Tensor | None = None,
        need_weights: bool = False,
    ) -> DecoderOutput:
        """Run the decoder on tgt (B,T) ids.

        With `memory`: the whole target prefix at once (training, scoring). With `state`: tgt holds only
        the new positions; their keys/values join the state's caches (incremental decoding).
        tgt_pad_mask (B,T) bool, True at pads: needed only for left padding, since with right padding the
        causal mask already hides every pad from every real position.
        """
        if (state is not None and tgt.size(1) == 1 and tgt_pad_mask is None and not need_weights
                and self.cfg.fused_attention and not self.training and not torch.is_grad_enabled()):
            return DecoderOutput(self._decode_step(tgt, state))
        if state is None:
            if memory is None:
                raise ValueError("decode needs memory or a decoder state")
            kv = [layer.cross_attn.project_kv(memory.states) for layer in self.decoder]
            src_mask, caches, offset = memory.src_mask, [None] * len(self.decoder), 0
        else:
            kv, src_mask, caches, offset = state.memory_kv, state.src_mask, state.caches, state.length
        tgt_mask = None if tgt_pad_mask is None else ~tgt_pad_mask[:, None, None, :]  # (B,1,1,T)
        y = self._embed(self.tgt_embed, tgt, offset)
        self_ws, cross_ws = ([], []) if need_weights else (None, None)
        for layer, layer_kv, cache in zip(self.decoder, kv, caches):
            y, sw, cw = layer(y, layer_kv, src_mask, tgt_mask, cache, need_weights)
            if need_weights:
                self_ws.append(sw)
                cross_ws.append(cw)
        return DecoderOutput(self.decoder_norm(y), self_ws, cross_ws)

    def logits(self, hidden: Tensor) -> Tensor:
        """(…, D) -> (…, V): the output projection (the shared embedding matrix when tied).

        Without gradients it multiplies by a transposed copy of the matrix: the same product, faster for a few rows.
        """
        weight = self.tgt_embed.weight if self.out_proj is None else self.out_proj.weight  # (V, D)
        if torch.is_grad_enabled():
            return F.linear(hidden, weight)
        return hidden @ self._transposed(weight)  # (…,D) @ (D,V): the same product, faster for a few rows

    def _step_layers(self) -> list[_StepLayer]:
        """The decoder's tensors as `_decode_step` reads them (no module lookups per step)."""
        w = self._transposed
        out = []
        for layer in self.decoder:
            sa, ca, ffn = layer.self_attn, layer.cross_attn, layer.ffn
            out.append(_StepLayer(
                norm_first=layer.res_self.norm_first,
                self_qkv=(sa.in_proj.bias, w(sa.in_proj.weight)), self_out=(sa.out_proj.bias, w(sa.out_proj.weight)),
                cross_q=(ca.q_proj.bias, w(ca.q_proj.weight)), cross_out=(ca.out_proj.bias, w(ca.out_proj.weight)),
                ffn_in=(ffn.linear1.bias, w(ffn.linear1.weight)), ffn_out=(ffn.linear2.bias, w(ffn.linear2.weight)),
                norms=tuple((r.norm.weight, r.norm.bias, r.norm.eps) for r in (layer.res_self, layer.res_cross, layer.res_ffn)),
            ))
        return out

    def _decode_step(self, tgt: Tensor, state: DecoderState) -> Tensor:
        """tgt (N,1) ids of one new position per row -> (N,1,D) final decoder states, adding to state's caches.

        What `DecoderLayer.forward` computes with a cache and no dropout, on (N, D) rows. N = B · K rows;
        the K beams of a sentence query its memory together, as K queries of one attention row.
        """
        n, d, heads = tgt.size(0), self.cfg.d_model, self.cfg.n_heads
        b, k, dh = n // state.beams, state.beams, d // heads
        if state.length >= self.positions.table.size(0):
            self.positions.table = sinusoidal_table(2 * state.length + 1, d).to(self.positions.table.device)
        x = F.embedding(tgt.view(n), self.tgt_embed.weight) * math.sqrt(d) + self.positions.table[state.length]  # (N,D)
        mask = state.src_mask if state.src_padded else None  # (B,1,1,S); sentences keep no padding when selected
        plan = self._step_plan
        if plan is None:
            plan = self._step_plan = self._step_layers()
        for lw, (mem_k, mem_v), cache in zip(plan, state.memory_kv, state.caches):
            norm_self, norm_cross, norm_ffn = lw.norms
            # causal self-attention: the new position attends to every cached position and to itself
            h = torch.layer_norm(x, (d,), *norm_self) if lw.norm_first else x
            qkv = torch.addmm(lw.self_qkv[0], h, lw.self_qkv[1]).view(n, 3, heads, 1, dh)  # (N,3D) -> (N,3,H,1,Dh)
            keys, values = cache.append_kv(qkv[:, 1:])  # (N,H,T,Dh): every position so far, this one included
            q = qkv[:, 0]  # (N,H,1,Dh)
            a = F.scaled_dot_product_attention(q, keys, values).view(n, d)  # (N,H,1,Dh) -> (N,D)
            x = _residual(x, torch.addmm(lw.self_out[0], a, lw.self_out[1]), lw.norm_first, norm_self)
            # cross-attention: a sentence's K beams are K queries of its memory row
            h = torch.layer_norm(x, (d,), *norm_cross) if lw.norm_first else x
            q = torch.addmm(lw.cross_q[0], h, lw.cross_q[1]).view(b, k, heads, dh).transpose(1, 2)  # (B,H,K,Dh)
            a = F.scaled_dot_product_attention(q, mem_k, mem_v, attn_mask=mask)  # (B,H,K,Dh)
            a = a.transpose(1, 2).reshape(n, d)  # (B,K,H,Dh) -> (N,D)
            x = _residual(x, torch.addmm(lw.cross_out[0], a, lw.cross_out[1]), lw.norm_first, norm_cross)
            # feed-forward
            h = torch.layer_norm(x, (d,), *norm_ffn) if lw.norm_first else x
            h = torch.relu_(torch.addmm(lw.ffn_in[0], h, lw.ffn_in[1]))  # (N,F)
            x = _residual(x, torch.addmm(lw.ffn_out[0], h, lw.ffn_out[1]), lw.norm_first, norm_ffn)
        return self.decoder_norm(x).view(n, 1, d)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: src (B,S), tgt_in (B,T) starting with <bos> -> logits (B,T,V)."""
        return self.logits(self.decode(tgt_in, memory=self.encode(src)).hidden)


def _residual(x: Tensor, out: Tensor, norm_first: bool, norm: tuple[Tensor, Tensor, float]) -> Tensor:
    """The residual stream after a sublayer at inference (no dropout): x + out, then LayerNorm in post-norm."""
    if norm_first:
        return x + out
    return torch.layer_norm(x + out, (x.size(-1),), *norm)


@dataclass
class _StepLayer:
    """One decoder layer's tensors for `_decode_step`: (bias, weight) pairs with weights transposed to (in, out)."""

    norm_first: bool
    self_qkv: tuple[Tensor, Tensor]  # (3D,), (D, 3D): q, k, v
    self_out: tuple[Tensor, Tensor]  # (D,), (D, D)
    cross_q: tuple[Tensor, Tensor]  # (D,), (D, D)
    cross_out: tuple[Tensor, Tensor]  # (D,), (D, D)
    ffn_in: tuple[Tensor, Tensor]  # (F,), (D, F)
    ffn_out: tuple[Tensor, Tensor]  # (D,), (F, D)
    norms: tuple[tuple[Tensor, Tensor, float], ...]  # LayerNorm (weight, bias, eps) of the self, cross, ffn sublayers


class _TransposedWeights:
    """(in, out) copies of (out, in) weight matrices for inference, remade when a weight changes.

    A copy is reused while its weight is the same tensor with the same storage and version counter (every
    in-place update, an optimizer step or load_state_dict, bumps the version), so it never goes stale.
    """

    def __init__(self) -> None:
        self._copies: dict[int, tuple[Tensor, int, int, Tensor]] = {}  # id -> (weight, data_ptr, version, copy)

    def __call__(self, weight: Tensor) -> Tensor:
        hit = self._copies.get(id(weight))
        if hit is not None and hit[0] is weight and hit[1] == weight.data_ptr() and hit[2] == weight._version:
            return hit[3]
        copy = weight.detach().t().contiguous()  # (in, out)
        self._copies[id(weight)] = (weight, weight.data_ptr(), weight._version, copy)
        return copy
