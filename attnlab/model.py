"""The encoder-decoder Transformer (Vaswani et al. 2017, figure 1): encode / decode / decode_step / logits.

    src ids -> embed·√D + PE -> N encoder layers -> memory
    tgt ids -> embed·√D + PE -> N decoder layers (causal self-attn, cross-attn over memory) -> logits

"+ PE" is the paper's; `model.positions` may mix position in otherwise (`nn/positional.py`), and
`model.attention_scale` may divide q·k by other than √d_k: every path (encode, decode, decode_step) honours both.

The model only computes: training lives in `train.py`, search in `decoding.py`. Decoding one token at a
time goes through `start_decoding` (cross-attention keys/values computed once) and then, per position,
either `decode(..., state)` (the layers' readable forward, with a KV cache per decoder layer) or
`decode_step` (the inference path the searches take: the same computation on (N, D) rows, written once in
`nn/step.py` and shared with the ONNX graph, straight to logits); tests check that both agree. Without a
state, `decode` runs the whole target in parallel.

Shape letters: B batch, S source length, T target length, D model width, V vocabulary, H heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlab.config import ModelConfig, attention_divisor
from attnlab.nn.attention import KVCache
from attnlab.nn.dropout import dropout
from attnlab.nn.layers import DecoderLayer, EncoderLayer
from attnlab.nn.positional import PositionalEncoding
from attnlab.nn.step import StepLayer, TransposedWeights, decoder_step


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
        self.positions = PositionalEncoding(d, cfg.max_positions, cfg.positions)
        sizes = dict(d_model=d, n_heads=cfg.n_heads, d_ff=cfg.d_ff, dropout=cfg.dropout,
                     attention_dropout=cfg.attention_dropout, activation_dropout=cfg.activation_dropout,
                     norm_first=cfg.norm_first, fused=cfg.fused_attention,
                     scale=1 / attention_divisor(cfg.attention_scale, d // cfg.n_heads))
        self.encoder = nn.ModuleList(EncoderLayer(**sizes) for _ in range(cfg.n_encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(**sizes) for _ in range(cfg.n_decoder_layers))
        # Pre-norm leaves the residual stream un-normalised: each stack ends with a LayerNorm.
        self.encoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d) if cfg.norm_first else nn.Identity()
        self._transposed = TransposedWeights()  # inference-only weight copies (see decode_step)
        self._step_layers: list[StepLayer] | None = None  # their per-layer view, renewed by start_decoding
        self.reset_parameters()

    def train(self, mode: bool = True) -> Seq2SeqTransformer:
        """nn.Module.train (and .eval), dropping the inference weight copies: training may have changed the
        weights in ways their version counters do not show (the fused optimizer's update)."""
        self._transposed.clear()
        self._step_layers = None
        return super().train(mode)

    def reset_parameters(self) -> None:
        """Xavier-uniform matrices, zero biases; embeddings N(0, D^-1/2) so that embed·√D has unit variance."""
        for name, p in self.named_parameters():
            if name.startswith("positions."):
                continue  # a learned position table starts as the module says
            if "embed" in name:
                nn.init.normal_(p, std=self.cfg.d_model**-0.5)
            elif p.dim() > 1:
                nn.init.xavier_uniform_(p)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        with torch.no_grad():
            for emb in {self.src_embed, self.tgt_embed}:
                emb.weight[self.pad_id].zero_()
        self.positions.reset_parameters()

    def _embed(self, emb: nn.Embedding, ids: Tensor, offset: int = 0) -> Tensor:
        x = emb(ids) * math.sqrt(self.cfg.d_model)  # (B,T,D)
        return dropout(self.positions(x, offset), self.cfg.dropout, self.training)

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
        self._step_layers = None  # made again (from the still-valid weight copies) by the first step
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
        return F.linear(hidden, self.output_weight())

    def output_weight(self) -> Tensor:
        """The (V, D) output matrix: the target embedding when tied, else out_proj's (exporters read it too)."""
        return self.tgt_embed.weight if self.out_proj is None else self.out_proj.weight

    def decode_step(self, tgt: Tensor, state: DecoderState) -> Tensor:
        """tgt (N,1) ids of one new position per row -> next-token logits (N,V), adding to state's caches.

        Inference only (eval mode, no gradients): `logits(decode(tgt, state=state).hidden[:, -1])` computed by
        `nn.step.decoder_step`, with GEMMs on transposed weight copies (the output matrix's too).
        """
        if self.training or torch.is_grad_enabled():
            raise ValueError("decode_step is for inference: call model.eval() and run it under torch.inference_mode()")
        if self._step_layers is None:
            self._step_layers = [StepLayer.of(layer, self._transposed) for layer in self.decoder]
        d = self.cfg.d_model
        x = F.embedding(tgt.view(-1), self.tgt_embed.weight) * math.sqrt(d)  # (N,D)
        x = self.positions.mix(x, self.positions.rows(state.length))  # (N,D) with (1,D): every row at one position
        mask = state.src_mask if state.src_padded else None  # (B,1,1,S); sentences keep no padding when selected
        x = decoder_step(self._step_layers, x, state.memory_kv, state.caches, mask, state.beams)
        return self.decoder_norm(x) @ self._transposed(self.output_weight())  # (N,D) @ (D,V)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: src (B,S), tgt_in (B,T) starting with <bos> -> logits (B,T,V)."""
        return self.logits(self.decode(tgt_in, memory=self.encode(src)).hidden)


def count_parameters(cfg: ModelConfig) -> int:
    """Parameters of the model a config describes (built on the meta device: no memory, no weights needed)."""
    with torch.device("meta"):
        return sum(p.numel() for p in Seq2SeqTransformer(cfg).parameters())

