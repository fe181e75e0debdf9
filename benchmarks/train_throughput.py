"""Training throughput of attnlab's Transformer against torch.nn.Transformer of the same sizes, on the
same batches, in one run; with model-FLOPs utilisation against this machine's measured fp32 matmul peak.

    python benchmarks/train_throughput.py [--threads 2] [--steps 20] [--repeats 3] [--batches synthetic|tatoeba]

Both models get token embeddings ·√D + sinusoidal positions, the same stacks, a tied output layer,
label-smoothed cross-entropy (ε=0.1) and one step of the same optimizer per batch (attnlab's
`make_optimizer`: torch's fused Adam), in one process whose allocator keeps freed memory
(`attnlab.hardware.keep_freed_memory`, as `attnlab train` sets it): both sides get both. The baseline is written as a careful
nn.Transformer user would: logits only at real target positions (as attnlab's loss does), a source padding
mask only when a batch has padding, and no target padding mask (with right padding the causal mask already
keeps real positions off the padding). nn.Transformer uses its own dropout placement (residual, attention
weights and FFN activation, p=0.1); attnlab is timed with that placement (the like-for-like headline) and
with the paper's (residual and embeddings only: less work, shown for what the default costs).

Each model is timed `--repeats` times, the models taking turns, so that a change in the machine's load
falls on all of them; the row gives the median and the spread (min-max). Throughput counts non-pad target
tokens per second. The rows are written to benchmarks/results/throughput-BATCHES.json.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from attnlab.config import ModelConfig
from attnlab.data.batching import Batch, collate, make_batches
from attnlab.hardware import keep_freed_memory, matmul_peak
from attnlab.model import Seq2SeqTransformer
from attnlab.nn.positional import sinusoidal_table
from attnlab.tokenizer import PAD
from attnlab.train import batch_loss, make_optimizer

D, H, FF, LAYERS, V = 256, 4, 1024, 3, 8000


class TorchTransformerMT(nn.Module):
    """nn.Transformer with the embeddings, positions and tied output layer it lacks."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(V, D, padding_idx=PAD)
        nn.init.normal_(self.embed.weight, std=D**-0.5)
        self.core = nn.Transformer(D, H, LAYERS, LAYERS, FF, dropout=0.1, batch_first=True)
        self.core.encoder.norm = None  # post-norm: the paper has no extra final LayerNorm
        self.core.decoder.norm = None
        self.register_buffer("pe", sinusoidal_table(512, D), persistent=False)

    def _in(self, ids):
        return F.dropout(self.embed(ids) * math.sqrt(D) + self.pe[: ids.size(1)], 0.1, self.training)

    def loss(self, b: Batch) -> torch.Tensor:
        t = b.tgt_in.size(1)
        src_pad = b.src == PAD  # (B,S)
        src_pad = src_pad if bool(src_pad.any()) else None  # no mask (and no masking work) when nothing is padded
        h = self.core(self._in(b.src), self._in(b.tgt_in), tgt_mask=self.core.generate_square_subsequent_mask(t),
                      src_key_padding_mask=src_pad, memory_key_padding_mask=src_pad, tgt_is_causal=True)
        real = b.tgt_out != PAD  # (B,T)
        logits = F.linear(h[real], self.embed.weight)  # (n_real,V): no logits at padding positions
        return F.cross_entropy(logits, b.tgt_out[real], label_smoothing=0.1, reduction="sum")


def synthetic_batches(n: int, b: int = 128, length: int = 32) -> list[Batch]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        src = torch.randint(4, V, (b, length), generator=g).tolist()
        tgt = torch.randint(4, V, (b, length - 1), generator=g).tolist()
        out.append(collate(src, tgt))
    return out


def tatoeba_batches(n: int, max_tokens: int = 4096) -> list[Batch]:
    """Real token-bucket batches: Tatoeba zh->en through a tokenizer trained on it (kept in a cache folder)."""
    from attnlab.data.parallel import load_pairs
    from attnlab.config import TokenizerConfig
    from attnlab.tokenizer import Tokenizer

    data = load_pairs("data/tatoeba-zh-en/train.tsv", "zh-en")
    tok_dir = Path(".cache/bench-tokenizer")
    tok = Tokenizer.load(tok_dir) if (tok_dir / "joint.model").is_file() else Tokenizer.train(data.pairs, TokenizerConfig(vocab_size=V), tok_dir)
    src, tgt = tok.encode_src(data.sources), tok.encode_tgt(data.targets)
    batches = make_batches([(len(s), len(t) + 1) for s, t in zip(src, tgt)], max_tokens)
    pick = torch.randperm(len(batches), generator=torch.Generator().manual_seed(0))[:n].tolist()
    return [collate([src[i] for i in batches[k]], [tgt[i] for i in batches[k]]) for k in pick]


def train_flops(b: Batch) -> float:
    """Model FLOPs of one training step (forward + backward = 3 × forward matmul FLOPs), padding excluded."""
    src_len = (b.src != PAD).sum(1).double()  # (B,)
    tgt_len = (b.tgt_out != PAD).sum(1).double()
    s_tok, t_tok = src_len.sum().item(), tgt_len.sum().item()
    enc = LAYERS * (s_tok * (4 * D * D + 2 * D * FF) + (src_len**2).sum().item() * 2 * D)
    dec = LAYERS * (t_tok * (6 * D * D + 2 * D * FF) + s_tok * 2 * D * D
                    + (tgt_len**2).sum().item() * D  # causal self-attention: half of T² scores and values
                    + (tgt_len * src_len).sum().item() * 2 * D)
    out = t_tok * D * V
    return 3 * 2 * (enc + dec + out)


def train_steps(model: nn.Module, opt: torch.optim.Optimizer, loss_fn, batches: list[Batch]) -> float:
    """One Adam step per batch; the seconds they took."""
    model.train()
    t0 = time.perf_counter()
    for b in batches:
        loss = loss_fn(model, b) / b.n_tgt_tokens
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--steps", type=int, default=20, help="timed steps per model and repeat")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per model first")
    p.add_argument("--repeats", type=int, default=3, help="timings per model (the row is their median)")
    p.add_argument("--batches", choices=["synthetic", "tatoeba"], default="synthetic",
                   help="synthetic: 128 x 32 random tokens; tatoeba: real 4096-token buckets")
    p.add_argument("--json", type=Path, default=None,
                   help="where to write the rows (default benchmarks/results/throughput-BATCHES.json)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()
    torch.manual_seed(0)
    batches = synthetic_batches(args.steps) if args.batches == "synthetic" else tatoeba_batches(args.steps)
    tokens = sum(b.n_tgt_tokens for b in batches)
    flops = sum(train_flops(b) for b in batches)
    peak = matmul_peak(3.0)
    print(f"fp32 matmul peak ({args.threads} threads): {peak / 1e9:.1f} GFLOP/s; batches: {args.batches}, "
          f"{args.steps} steps x {args.repeats} repeats, {tokens} target tokens per repeat")

    def ours(**kw):
        return Seq2SeqTransformer(ModelConfig(vocab_size=V, d_model=D, n_heads=H, d_ff=FF, n_encoder_layers=LAYERS,
                                              n_decoder_layers=LAYERS, **kw))

    runs = [  # (name, what it is, model, loss); the first is the baseline of the ratios
        ("nn.Transformer", "baseline", TorchTransformerMT(), lambda m, b: m.loss(b)),
        ("attnlab, nn.Transformer's dropout places", "like for like",
         ours(attention_dropout=0.1, activation_dropout=0.1), lambda m, b: batch_loss(m, b, 0.1)[0]),
        ("attnlab, paper dropout", "less work: no attention/activation dropout", ours(),
         lambda m, b: batch_loss(m, b, 0.1)[0]),
    ]
    opts = [make_optimizer(m, 0.0) for _, _, m, _ in runs]
    for opt in opts:
        for group in opt.param_groups:
            group["lr"] = 1e-4
    for (_, _, model, fn), opt in zip(runs, opts):
        train_steps(model, opt, fn, batches[: args.warmup])
    seconds: list[list[float]] = [[] for _ in runs]
    for _ in range(args.repeats):  # the models take turns, so a change in load falls on all of them
        for i, ((_, _, model, fn), opt) in enumerate(zip(runs, opts)):
            seconds[i].append(train_steps(model, opt, fn, batches))
    rows = []
    for (name, kind, _, _), secs in zip(runs, seconds):
        speeds = [tokens / s for s in secs]
        rows.append({"model": name, "kind": kind, "tok_s": statistics.median(speeds), "tok_s_min": min(speeds),
                     "tok_s_max": max(speeds), "gflops": flops / statistics.median(secs) / 1e9})
    for r in rows:
        r["mfu"] = r["gflops"] * 1e9 / peak
        r["ratio"] = r["tok_s"] / rows[0]["tok_s"]
        print(f"{r['model']:42s} {r['tok_s']:8.0f} target tok/s ({r['tok_s_min']:.0f}-{r['tok_s_max']:.0f})  "
              f"{r['gflops']:6.1f} GFLOP/s  MFU {100 * r['mfu']:5.1f}%  ratio {r['ratio']:.2f}x  [{r['kind']}]")
    out = args.json or Path("benchmarks/results") / f"throughput-{args.batches}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"batches": args.batches, "threads": args.threads, "steps": args.steps,
                               "repeats": args.repeats, "peak_gflops": peak / 1e9, "target_tokens": tokens,
                               "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
