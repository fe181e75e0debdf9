"""The encoder-decoder Transformer (Vaswani et al. 2017, figure 1): encode / decode / logits.

    src ids -> embed·√D + PE -> N encoder layers -> memory
    tgt ids -> embed·√D + PE -> N decoder layers (causal self-attn, cross-attn over memory) -> logits

The model only computes: training lives in `train.py`, search in `decoding.py`. Decoding one token at a
time goes through `start_decoding` (cross-attention keys/values computed once) and `decode(..., state)`
with a KV cache per decoder layer; without a state, `decode` runs the whole target in parallel.

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
from attnlab.nn.positional import SinusoidalPositionalEncoding


@dataclass
class Memory:
    """The encoder's output for a batch of source sentences."""

    states: Tensor  # (B, S, D)
    src_mask: Tensor  # (B, 1, 1, S) bool, True at real (non-pad) source tokens
    attention: list[Tensor] | None = None  # per encoder layer (B, H, S, S), when requested


@dataclass
class DecoderState:
    """What incremental decoding carries from step to step: cross-attention k/v and self-attention caches."""

    memory_kv: list[tuple[Tensor, Tensor]]  # per layer, each (B, H, S, Dh)
    src_mask: Tensor  # (B, 1, 1, S)
    caches: list[KVCache] = field(default_factory=list)

    @property
    def length(self) -> int:
        """Target positions decoded so far."""
        return self.caches[0].length if self.caches else 0

    def select(self, index: Tensor) -> None:
        """Keep (and reorder) batch rows, e.g. beams after a step or unfinished sentences: index (B',)."""
        self.memory_kv = [(k.index_select(0, index), v.index_select(0, index)) for k, v in self.memory_kv]
        self.src_mask = self.src_mask.index_select(0, index)
        for cache in self.caches:
            cache.select(index)


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
        kv = [layer.cross_attn.project_kv(memory.states) for layer in self.decoder]
        return DecoderState(kv, memory.src_mask, [KVCache() for _ in self.decoder])

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
        """(…, D) -> (…, V): the output projection (the shared embedding matrix when tied)."""
        if self.out_proj is None:
            return F.linear(hidden, self.tgt_embed.weight)
        return self.out_proj(hidden)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: src (B,S), tgt_in (B,T) starting with <bos> -> logits (B,T,V)."""
        return self.logits(self.decode(tgt_in, memory=self.encode(src)).hidden)
