"""Export a trained run to ONNX as two graphs, the encoder and one decoder step, and run them with onnxruntime.

    encoder.onnx       src (B,S) int64  ->  cross_k_i, cross_v_i (B,H,S,Dh) for every decoder layer i
    decoder_step.onnx  tokens (N,1) int64, position () int64 (the positions already decoded), src_mask (N,S) bool,
                       cross_k_i, cross_v_i (N,H,S,Dh), past_k_i, past_v_i (N,H,T,Dh)
                       ->  logits (N,V), present_k_i, present_v_i (N,H,T+1,Dh)
The cross-attention keys and values are computed once per sentence, as in `Seq2SeqTransformer.start_decoding`;
the self-attention cache travels through the step's inputs and outputs (T = 0 at the first step). The
folder also holds the tokenizer and the run's config, so `attnlab.translate.onnx` decodes from it alone.

The step graph traces `attnlab.nn.step.decoder_step`, the code the model's own `decode_step` runs, on (N, D)
rows: one query per row needs no causal mask, and the position is a tensor input, so the graph stays valid
for every length (tracing the layers' Python control flow would fix lengths at export time). Every
`model.positions` and `model.attention_scale` is expressed (a learned table only as far as it reaches). Tests check both graphs against the PyTorch
model and greedy search through onnxruntime against `attnlab.decoding.greedy_search`.

Exported with PyTorch's TorchScript-based exporter (`dynamo=False`), which needs no package beyond onnx.
References: PyTorch `torch.onnx.export` documentation; ONNX Runtime Python API (`InferenceSession`).
"""

from __future__ import annotations

import logging
import math
import shutil
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from attnlab import checkpoint
from attnlab.export import CONFIG_COPY, check_learned_positions, check_one_direction, check_out_dir, positions_needed
from attnlab.model import Seq2SeqTransformer
from attnlab.nn.positional import sinusoidal_table
from attnlab.nn.step import StepLayer, TransposedWeights, decoder_step

log = logging.getLogger(__name__)

ENCODER_FILE, STEP_FILE = "encoder.onnx", "decoder_step.onnx"
OPSET = 17


class EncoderGraph(nn.Module):
    """src (B,S) -> per decoder layer, its cross-attention keys and values (B,H,S,Dh)."""

    def __init__(self, model: Seq2SeqTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: Tensor) -> tuple[Tensor, ...]:
        memory = self.model.encode(src).states  # (B,S,D)
        return tuple(t for layer in self.model.decoder for t in layer.cross_attn.project_kv(memory))


class DecoderStepGraph(nn.Module):
    """One target position for N rows: `nn.step.decoder_step`, the code `Seq2SeqTransformer.decode_step` runs."""

    def __init__(self, model: Seq2SeqTransformer) -> None:
        super().__init__()
        self.model = model
        table = model.positions.rows(0, model.positions.table.size(0)).detach().clone()  # (P,D) sinusoidal or learned
        self.register_buffer("table", table, persistent=False)
        self.layers = [StepLayer.of(layer, TransposedWeights()) for layer in model.decoder]

    def forward(self, tokens: Tensor, position: Tensor, src_mask: Tensor, *kv: Tensor) -> tuple[Tensor, ...]:
        m, n_layers = self.model, len(self.model.decoder)
        cross, past = kv[: 2 * n_layers], kv[2 * n_layers:]
        x = m.tgt_embed(tokens[:, 0]) * math.sqrt(m.cfg.d_model)  # (N,D)
        x = m.positions.mix(x, self.table.index_select(0, position.view(1)))  # (N,D) with (1,D), as model.positions says
        caches = [_PastKV(past[2 * i], past[2 * i + 1]) for i in range(n_layers)]
        x = decoder_step(self.layers, x, list(zip(cross[::2], cross[1::2])), caches, src_mask[:, None, None, :])
        logits = m.logits(m.decoder_norm(x))  # (N,V): the output matrix is one initializer with the embedding
        return (logits, *(t for c in caches for t in (c.k, c.v)))  # (N,V), (N,H,T+1,Dh)...


class _PastKV:
    """The self-attention cache as the graph carries it: past k/v in, present k/v (one position longer) out."""

    def __init__(self, k: Tensor, v: Tensor) -> None:
        self.k, self.v = k, v  # (N,H,T,Dh)

    def append_kv(self, kv: Tensor) -> tuple[Tensor, Tensor]:
        """kv (N,2,H,1,Dh) -> keys, values (N,H,T+1,Dh)."""
        self.k, self.v = torch.cat([self.k, kv[:, 0]], dim=2), torch.cat([self.v, kv[:, 1]], dim=2)
        return self.k, self.v


def kv_names(n_layers: int, prefix: str) -> list[str]:
    return [f"{prefix}_{kind}_{i}" for i in range(n_layers) for kind in ("k", "v")]


def export_onnx(run_dir: str | Path, out_dir: str | Path, force: bool = False, opset: int = OPSET) -> Path:
    """Write encoder.onnx, decoder_step.onnx, the tokenizer and the config of a run into out_dir."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    check_out_dir(run_dir, out_dir, force, STEP_FILE, "ONNX")
    run = checkpoint.load_run(run_dir)  # fails early, naming the file, if one is missing or corrupt
    cfg, model = run.cfg, run.model
    check_one_direction(cfg, "ONNX")
    check_learned_positions(cfg, "ONNX")
    model.positions.table = sinusoidal_table(positions_needed(cfg), cfg.model.d_model)  # the graph's fixed table
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    _export_graphs(model, out_dir, opset)
    for path in sorted((run_dir / checkpoint.TOKENIZER_DIR).glob("*.model")):
        shutil.copy(path, out_dir / path.name)
    shutil.copy(run_dir / checkpoint.CONFIG_FILE, out_dir / CONFIG_COPY)
    log.info("wrote %s and %s to %s", ENCODER_FILE, STEP_FILE, out_dir)
    return out_dir


def _export_graphs(model: Seq2SeqTransformer, out_dir: Path, opset: int) -> None:
    cfg = model.cfg
    n, h, dh = len(model.decoder), cfg.n_heads, cfg.d_model // cfg.n_heads
    src = torch.tensor([[5, 6, 7], [8, 9, 0]])  # (B=2, S=3): any ids; the axes below stay dynamic
    cross, past = kv_names(n, "cross"), kv_names(n, "past")
    rows_src = {0: "rows", 2: "src_len"}
    with warnings.catch_warnings():  # the TorchScript exporter announces its deprecation on every call
        warnings.simplefilter("ignore")
        torch.onnx.export(
            EncoderGraph(model), (src,), str(out_dir / ENCODER_FILE), dynamo=False, opset_version=opset,
            input_names=["src"], output_names=cross,
            dynamic_axes={"src": {0: "rows", 1: "src_len"}, **{c: rows_src for c in cross}},
        )
        kv = [torch.zeros(2, h, 3, dh) for _ in cross] + [torch.zeros(2, h, 4, dh) for _ in past]
        args = (torch.tensor([[5], [6]]), torch.tensor(4), src != model.pad_id, *kv)
        present = kv_names(n, "present")
        torch.onnx.export(
            DecoderStepGraph(model), args, str(out_dir / STEP_FILE), dynamo=False, opset_version=opset,
            input_names=["tokens", "position", "src_mask", *cross, *past], output_names=["logits", *present],
            dynamic_axes={"tokens": {0: "rows"}, "src_mask": {0: "rows", 1: "src_len"}, "logits": {0: "rows"},
                          **{c: rows_src for c in cross}, **{p: {0: "rows", 2: "past_len"} for p in past},
                          **{p: {0: "rows", 2: "present_len"} for p in present}},
        )
