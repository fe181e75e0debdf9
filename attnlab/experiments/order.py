"""Without positions, attention ignores order: permute the source pieces and the encoder's outputs are the
same vectors, permuted the same way (permutation equivariance: encode(P·x) = P·encode(x)). Self-attention
is a weighted mean over a set of keys, and the FFN, the LayerNorms and the residuals act on each position
alone, so nothing in the encoder can tell the positions apart until `model.positions` marks them.

`permutation_gap` measures it: the largest difference between the encoding of a permuted sentence and
the permuted encoding of the sentence. The study measures it for freshly built models of every kind of
positions, and for a trained model as it is and with its positions taken out (the same weights).

Shape letters: B sentences, S source length, D model width.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor

from attnlab import checkpoint
from attnlab.config import POSITIONS, ModelConfig
from attnlab.experiments.results import Results
from attnlab.model import Seq2SeqTransformer


@torch.inference_mode()
def permutation_gap(model: Seq2SeqTransformer, src: Tensor, perm: Tensor) -> float:
    """max |encode(src[:, perm]) - encode(src)[:, perm]| for src (B,S) without padding, perm (S,)."""
    model.eval()
    states = model.encode(src).states  # (B,S,D)
    permuted = model.encode(src[:, perm]).states  # (B,S,D)
    return (permuted - states[:, perm]).abs().max().item()


def random_case(vocab: int, length: int = 8, sentences: int = 4, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Source ids (B,S) drawn from the non-special pieces, and a permutation of the S positions that moves each."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, vocab, (sentences, length), generator=g)
    perm = torch.randperm(length, generator=g)
    while (perm == torch.arange(length)).any():  # every piece moves
        perm = torch.randperm(length, generator=g)
    return src, perm


def fresh_models(cfg: ModelConfig, seed: int = 0) -> dict[str, Seq2SeqTransformer]:
    """A model of each kind of positions, its weights drawn alike (the same seed)."""
    models = {}
    for kind in POSITIONS:
        torch.manual_seed(seed)
        models[kind] = Seq2SeqTransformer(dataclasses.replace(cfg, positions=kind, dropout=0.0)).eval()
    return models


def without_positions(run_dir: Path) -> tuple[Seq2SeqTransformer, Seq2SeqTransformer]:
    """A trained run's model, and the same weights with `positions = "none"`."""
    run = checkpoint.load_run(run_dir)
    bare = Seq2SeqTransformer(dataclasses.replace(run.cfg.model, positions="none"))
    weights = {k: v for k, v in run.model.state_dict().items() if not k.startswith("positions.")}
    bare.load_state_dict(weights, strict=False)
    return run.model, bare.eval()


def run(command: str, cfg: ModelConfig | None = None, model_dir: Path | None = None, seed: int = 0) -> Results:
    cfg = cfg or ModelConfig(vocab_size=1000, d_model=128, n_heads=4, d_ff=512)
    src, perm = random_case(cfg.vocab_size, seed=seed)
    rows = [{"model": f"fresh, positions = {kind}", "gap": permutation_gap(m, src, perm)}
            for kind, m in fresh_models(cfg, seed).items()]
    if model_dir is not None:
        trained, bare = without_positions(model_dir)
        src, perm = random_case(trained.cfg.vocab_size, seed=seed)
        rows += [{"model": f"{model_dir} (positions = {trained.cfg.positions})", "gap": permutation_gap(trained, src, perm)},
                 {"model": f"{model_dir}, positions taken out", "gap": permutation_gap(bare, src, perm)}]
    for row in rows:
        row["equivariant"] = "yes" if row["gap"] < 1e-4 else "no"
    return Results(
        study="order", command=command, title="does the encoder see word order?",
        columns=[("model", "model"), ("gap", "max ‖enc(P·x) − P·enc(x)‖"), ("equivariant", "permutation-equivariant")],
        rows=rows,
        notes=[f"{src.size(0)} random sentences of {src.size(1)} pieces, one permutation that moves every piece "
               f"({perm.tolist()}); float32, so equivariant means a gap at rounding level (below 1e-4)."])
