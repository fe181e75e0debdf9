"""The ONNX engine: the encoder and decoder-step graphs of `attnlab export onnx`, on onnxruntime.

The graphs stand in for the model under attnlab's own searches (`attnlab.decoding`): `start_decoding` runs
the encoder graph once, and `decode_step` the step graph, which carries the self-attention cache in and out.

Reference: ONNX Runtime Python API (`InferenceSession`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from attnlab import checkpoint
from attnlab.errors import AttnlabError
from attnlab.export.onnx import ENCODER_FILE, STEP_FILE, kv_names
from attnlab.tokenizer import PAD
from attnlab.translate.base import TranslatorBase


class OnnxTranslator(TranslatorBase):
    """Translation with the two exported graphs; `encoder` and `step` are their onnxruntime sessions."""

    def __init__(self, cfg, tokenizer, encoder, step) -> None:
        super().__init__(cfg, tokenizer, OnnxGraphs(encoder, step))
        self.encoder, self.step = encoder, step

    @classmethod
    def load(cls, model_dir: str | Path, threads: int = 0) -> OnnxTranslator:
        try:
            import onnxruntime as ort
        except ImportError:
            raise AttnlabError("running ONNX exports needs the onnxruntime package: pip install onnxruntime") from None
        cfg, tokenizer = checkpoint.load_export(model_dir, STEP_FILE, "an ONNX", "onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        sessions = [ort.InferenceSession(str(Path(model_dir) / f), options, providers=["CPUExecutionProvider"])
                    for f in (ENCODER_FILE, STEP_FILE)]
        return cls(cfg, tokenizer, *sessions)


class OnnxGraphs:
    """The searches' model interface (`attnlab.decoding.Seq2SeqModel`) over the two graphs."""

    training, pad_id = False, PAD

    def __init__(self, encoder, step) -> None:
        self.encoder, self.step = encoder, step

    def encode(self, src: Tensor) -> Tensor:
        return src  # (B,S) ids: the encoder graph's outputs are what start_decoding keeps

    def start_decoding(self, src: Tensor) -> GraphState:
        cross = self.encoder.run(None, {"src": src.numpy()})  # per decoder layer: k, v (B,H,S,Dh)
        b, h, _, dh = cross[0].shape
        return GraphState((src != self.pad_id).numpy(), cross, [np.zeros((b, h, 0, dh), np.float32)] * len(cross))

    def decode_step(self, tgt: Tensor, state: GraphState) -> Tensor:
        """tgt (N,1) -> next-token logits (N,V), the state's k/v one position longer."""
        n_layers = len(state.cross) // 2
        feed = {"tokens": tgt.numpy(), "position": np.array(state.length, np.int64), "src_mask": state.src_mask,
                **dict(zip(kv_names(n_layers, "cross"), state.cross)), **dict(zip(kv_names(n_layers, "past"), state.past))}
        logits, *state.past = self.step.run(None, feed)  # (N,V), then present k/v (N,H,T+1,Dh)
        state.length += 1
        return torch.from_numpy(logits)


@dataclass
class GraphState:
    """Per row: the source mask (N,S), cross-attention k/v and past self-attention k/v of every layer."""

    src_mask: np.ndarray
    cross: list[np.ndarray]
    past: list[np.ndarray]
    length: int = 0  # positions decoded so far

    def select(self, index: Tensor) -> None:
        """Keep (and reorder) rows: index (N',)."""
        i = index.numpy()
        self.src_mask, self.cross, self.past = self.src_mask[i], [c[i] for c in self.cross], [p[i] for p in self.past]
