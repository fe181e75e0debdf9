"""attnlab's own engine: the PyTorch model of a run directory (`checkpoint.load_run`) under the searches of
`attnlab.decoding`, and the attention weights behind one translation, from the readable attention path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from attnlab import checkpoint
from attnlab.data.batching import pad_sources
from attnlab.decoding import DecodeOptions
from attnlab.errors import AttnlabError
from attnlab.model import Seq2SeqTransformer
from attnlab.tokenizer import EOS
from attnlab.translate.base import TranslatorBase


@dataclass
class AttentionMaps:
    """The attention weights behind one translation, from the readable attention path."""

    source: list[str]  # S source subword pieces
    target: list[str]  # T target pieces produced, ending with <eos> (row t is the step that produced target[t])
    translation: str
    encoder: Tensor  # (L_enc, H, S, S) encoder self-attention
    decoder: Tensor  # (L_dec, H, T, T) decoder self-attention (causal)
    cross: Tensor  # (L_dec, H, T, S) decoder cross-attention over the source
    start: str = "<bos>"  # the decoder's first input: <bos>, or the target-language tag of a model of both directions


class Translator(TranslatorBase):
    """attnlab's own PyTorch model and search."""

    attention_maps = True
    alignments = True
    model: Seq2SeqTransformer

    @classmethod
    def load(cls, run_dir: str | Path, direction: str | None = None) -> Translator:
        """The run's best weights; `direction` picks one of a model of both directions (None: its config's)."""
        run = checkpoint.load_run(run_dir, direction)
        return cls(run.cfg, run.tokenizer, run.model)

    @torch.inference_mode()
    def attention(self, line: str, beam: int | None = None, opts: DecodeOptions | None = None,
                  prefix: str = "") -> AttentionMaps:
        """Translate one line (with `opts` and a target `prefix` when given), then rerun the decoder on the
        result with weights returned."""
        src_ids = self.encode([line])[0]
        if not src_ids:
            raise AttnlabError("cannot show attention for an empty sentence")
        if opts is None and not prefix:
            hyp = self.translate_ids([src_ids], beam)[0]
        else:
            starts = [self.encode_target([prefix])[0]] if prefix else None
            hyp = self.hypotheses_batch([src_ids], opts or self.options(beam), starts)[0][0].tokens
        src = pad_sources([src_ids])  # (1,S)
        tgt_in = torch.tensor([[self.start_id, *hyp]])  # (1,T)
        memory = self.model.encode(src, need_weights=True)
        out = self.model.decode(tgt_in, memory=memory, need_weights=True)
        stack = lambda ws: torch.stack([w[0] for w in ws]).float()  # L × (1,H,·,·) -> (L,H,·,·)
        return AttentionMaps(
            source=self.tokenizer.src_pieces(src_ids),
            target=self.tokenizer.tgt_pieces([*hyp, EOS]),
            translation=self.tokenizer.decode_tgt([hyp])[0],
            encoder=stack(memory.attention), decoder=stack(out.self_attention), cross=stack(out.cross_attention),
            start=self.tokenizer.tgt_pieces([self.start_id])[0],
        )
