"""Per layer and head of a trained model, over teacher-forced dev pairs, what the 1/√d_k argument is about
(Vaswani et al. 2017, section 3.2.1 and footnote 4):

    var_qk       the variance of the raw scores q·k over every (query, key) pair a row may attend to
    predicted    Σ_i var(q_i)·var(k_i) + var(q_i)·E[k_i]² + E[q_i]²·var(k_i): that variance if q and k
                 were independent, with the measured means and variances of their components (the paper's
                 premise, mean 0 and variance 1, gives d_k)
    var_scaled   the variance of the scores the softmax sees, q·k × scale
    entropy      the mean softmax entropy of a row, in nats, against log(keys) of a uniform row
    saturated    the share of rows whose largest weight is above 0.9: the mass sits on one key (of the
                 rows that have two keys or more: the decoder's first position sees only itself)

Queries and keys come from each attention module's own projections (`MultiHeadAttention.queries_keys`),
read with forward pre-hooks while `encode` and `decode` run; the model is not changed.

Shape letters: B sentences, H heads, T query positions, S key positions, Dh head width.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from attnlab.data.batching import collate
from attnlab.model import Seq2SeqTransformer
from attnlab.nn.attention import MultiHeadAttention, causal_mask
from attnlab.tokenizer import PAD

SATURATED = 0.9  # a row is saturated when its largest weight is above this


@dataclass
class _Sums:
    """Running sums for one head."""

    pairs: float = 0.0  # (query, key) pairs a real row may attend to
    dot: float = 0.0  # Σ q·k over them
    dot2: float = 0.0  # Σ (q·k)²
    rows: float = 0.0  # real query rows
    entropy: float = 0.0  # Σ softmax entropy over them
    max_entropy: float = 0.0  # Σ log(keys it may attend to)
    choosing: float = 0.0  # real rows with two keys or more (a row with one key is trivially all on it)
    saturated: float = 0.0  # of those, rows whose largest weight is above SATURATED
    moments: dict[str, list] = field(default_factory=dict)  # "q"/"k" -> [count, Σx (Dh,), Σx² (Dh,)]

    def add_moments(self, name: str, x: Tensor) -> None:
        """x (N, Dh): real query rows or real keys of this head."""
        count, total, squares = self.moments.get(name, [0, 0.0, 0.0])
        self.moments[name] = [count + x.size(0), total + x.double().sum(0), squares + x.double().square().sum(0)]

    def component_moments(self, name: str) -> tuple[Tensor, Tensor]:
        """(mean, variance) of each component, (Dh,) each."""
        count, total, squares = self.moments[name]
        mean = total / count
        return mean, squares / count - mean.square()


@dataclass
class HeadStats:
    kind: str  # "encoder", "decoder" (self-attention) or "cross"
    layer: int
    head: int
    var_qk: float  # variance of q·k over the pairs attended
    predicted: float  # what it would be for independent q and k with the measured component moments
    var_scaled: float  # variance of q·k × scale: what the softmax sees
    entropy: float  # mean row entropy, nats
    max_entropy: float  # mean log(keys) of the rows: a uniform row's entropy
    saturated: float  # share of rows with two keys or more that put a weight above SATURATED on one

    def record(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class _Collector:
    scale: float
    sums: dict[tuple[str, int, int], _Sums] = field(default_factory=dict)

    def add(self, kind: str, layer: int, q: Tensor, k: Tensor, allowed: Tensor, rows: Tensor) -> None:
        """q (B,H,T,Dh), k (B,H,S,Dh); allowed (B,1,T,S) pairs a row may attend to; rows (B,T) real queries."""
        allowed = allowed & rows[:, None, :, None]  # (B,1,T,S)
        dots = q @ k.transpose(-2, -1)  # (B,H,T,S)
        weights = (dots * self.scale).masked_fill(~allowed, float("-inf")).softmax(-1).nan_to_num(0.0)  # (B,H,T,S)
        entropy = torch.special.entr(weights).sum(-1)  # (B,H,T)
        n_keys = allowed[:, 0].sum(-1)  # (B,T)
        log_keys = n_keys.clamp(min=1).double().log()  # (B,T)
        choosing = rows & (n_keys >= 2)  # (B,T)
        keys_seen = allowed[:, 0].any(1)  # (B,S) keys some real row may attend to
        for h in range(q.size(1)):
            s = self.sums.setdefault((kind, layer, h), _Sums())
            d = dots[:, h].double()[allowed[:, 0]]  # (pairs,)
            s.pairs += d.numel()
            s.dot += d.sum().item()
            s.dot2 += d.square().sum().item()
            s.rows += rows.sum().item()
            s.entropy += entropy[:, h][rows].sum().item()
            s.max_entropy += log_keys[rows].sum().item()
            s.choosing += choosing.sum().item()
            s.saturated += (weights[:, h].amax(-1)[choosing] > SATURATED).sum().item()
            s.add_moments("q", q[:, h][rows])  # (rows, Dh)
            s.add_moments("k", k[:, h][keys_seen])  # (keys, Dh)

    def stats(self) -> list[HeadStats]:
        out = []
        for (kind, layer, head), s in sorted(self.sums.items(), key=lambda kv: (_ORDER[kv[0][0]], kv[0][1:])):
            mean = s.dot / s.pairs
            var = s.dot2 / s.pairs - mean**2
            (mq, vq), (mk, vk) = s.component_moments("q"), s.component_moments("k")
            predicted = (vq * vk + vq * mk.square() + mq.square() * vk).sum().item()  # var Σ q_i k_i, independent
            out.append(HeadStats(kind, layer, head, var, predicted, var * self.scale**2,
                                 s.entropy / s.rows, s.max_entropy / s.rows, s.saturated / max(s.choosing, 1)))
        return out


_ORDER = {"encoder": 0, "decoder": 1, "cross": 2}


@torch.inference_mode()
def attention_stats(model: Seq2SeqTransformer, src: list[list[int]], tgt: list[list[int]],
                    batch_size: int = 32) -> list[HeadStats]:
    """Statistics of every head, over the pairs (src ids, tgt ids without <bos>/<eos>), teacher-forced."""
    model.eval()
    collector = _Collector(model.encoder[0].self_attn.scale)
    current: dict[str, Tensor] = {}
    handles = []

    def hook(kind: str, layer: int):
        def pre(module: MultiHeadAttention, args: tuple, kwargs: dict) -> None:
            x = args[0]
            q, k = module.queries_keys(x, kwargs.get("kv"))
            t, s = q.size(2), k.size(2)
            if kind == "encoder":
                allowed, rows = current["src_mask"], current["src_rows"]
            elif kind == "decoder":
                allowed, rows = causal_mask(t, s, x.device)[None, None], current["tgt_rows"]
            else:
                allowed, rows = current["src_mask"], current["tgt_rows"]
            collector.add(kind, layer, q, k, allowed.expand(q.size(0), 1, t, s), rows)
        return pre

    for i, layer in enumerate(model.encoder):
        handles.append(layer.self_attn.register_forward_pre_hook(hook("encoder", i), with_kwargs=True))
    for i, layer in enumerate(model.decoder):
        handles.append(layer.self_attn.register_forward_pre_hook(hook("decoder", i), with_kwargs=True))
        handles.append(layer.cross_attn.register_forward_pre_hook(hook("cross", i), with_kwargs=True))
    try:
        for start in range(0, len(src), batch_size):
            batch = collate(src[start : start + batch_size], tgt[start : start + batch_size])
            current.update(src_mask=(batch.src != PAD)[:, None, None, :], src_rows=batch.src != PAD,
                           tgt_rows=batch.tgt_out != PAD)
            model.decode(batch.tgt_in, memory=model.encode(batch.src))
    finally:
        for handle in handles:
            handle.remove()
    return collector.stats()
