"""What two searches over one model must agree on, when floating-point ties may fall either way.

Two engines (attnlab's PyTorch search, CTranslate2, onnxruntime) or two paths of one engine compute the
same logits only up to rounding, and the rounding differs between CPUs (AVX2, AVX-512, ARM) and kernels.
Where two candidates score within rounding of each other, either pick is correct, and from there the two
searches may go different ways. So outputs are compared token for token, and where they differ, the
difference must be such a tie, judged by one reference scorer: the attnlab model run teacher-forced on
each sentence alone.

- Greedy: at the first position where two outputs differ, both tokens (an ended output counts as <eos>)
  are the most likely one within `TOL`, given the prefix they share.
- Beam: each engine's best hypothesis scores at least as well as the other's under that engine's own
  scoring, within `TOL`. attnlab normalises over the whole vocabulary and then forbids <pad> and <bos>
  (attnlab/decoding.py); CTranslate2 forbids them before its softmax (`renormalised=True` here), so its
  log-probabilities are higher by -log(1 - p(<pad>) - p(<bos>)) at each step, an amount that a trained
  model drives to zero and an untrained one does not.

Both return the indices of the sentences whose outputs differ (ties), so that a test can also require
that almost every output is identical: a comparison that passed because everything tied would prove
nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from attnlab.decoding import DecodeOptions, length_penalty, max_output_lengths

TOL = 1e-4  # log-probability difference below which two candidates tie (rounding is ~1e-6 here)


def token_log_probs(model, src: Sequence[int], tokens: Sequence[int], opts: DecodeOptions, *,
                    ended: bool, renormalised: bool = False) -> torch.Tensor:
    """The reference model's next-token log-probabilities (<pad>/<bos> forbidden), teacher-forced on
    `tokens` (and <eos> when `ended`): (T,V), row t given <bos> and the first t of them."""
    y = [*tokens, opts.eos_id] if ended else list(tokens)
    prefix = torch.tensor([[opts.bos_id, *y[:-1]]])  # (1,T)
    with torch.inference_mode():
        memory = model.encode(torch.tensor([list(src)]))
        logits = model.logits(model.decode(prefix, memory=memory).hidden)[0].float()  # (T,V)
    forbidden = torch.tensor([opts.pad_id, opts.bos_id])
    if renormalised:
        return logits.index_fill(1, forbidden, -math.inf).log_softmax(dim=1)
    return logits.log_softmax(dim=1).index_fill(1, forbidden, -math.inf)


def hypothesis_score(model, src: Sequence[int], tokens: Sequence[int], opts: DecodeOptions, *,
                     renormalised: bool = False) -> float:
    """The length-penalised score beam search ranks `tokens` by; it ended with <eos> unless it reached
    the sentence's output length limit."""
    limit = max_output_lengths(torch.tensor([list(src)]), opts)[0]
    ended = len(tokens) < limit
    y = [*tokens, opts.eos_id] if ended else list(tokens)
    if not y:
        return 0.0
    lp = token_log_probs(model, src, tokens, opts, ended=ended, renormalised=renormalised)  # (T,V)
    total = float(lp.gather(1, torch.tensor(y)[:, None]).sum())
    return total / length_penalty(len(y), opts.length_penalty)


def assert_greedy_agrees(model, sources: Sequence[Sequence[int]], ours: Sequence[Sequence[int]],
                         theirs: Sequence[Sequence[int]], opts: DecodeOptions, tol: float = TOL) -> list[int]:
    """Greedy outputs equal, or differing first where two tokens tie for the most likely; -> tied indices."""
    assert len(ours) == len(theirs)
    tied = []
    for i, (src, a, b) in enumerate(zip(sources, ours, theirs)):
        if list(a) == list(b):
            continue
        limit = max_output_lengths(torch.tensor([list(src)]), opts)[0]
        assert max(len(a), len(b)) <= limit, f"sentence {i}: an output is longer than the limit {limit}"
        t = next(t for t in range(min(len(a), len(b)) + 1) if t == len(a) or t == len(b) or a[t] != b[t])
        picks = [a[t] if t < len(a) else opts.eos_id, b[t] if t < len(b) else opts.eos_id]
        row = token_log_probs(model, src, a[:t], opts, ended=True)[-1]  # (V,) after the prefix both share
        best = float(row.max())
        gaps = [best - float(row[p]) for p in picks]
        assert max(gaps) <= tol, (f"sentence {i} {list(src)}: the outputs part at position {t} on tokens {picks}, "
                                  f"{gaps} below the most likely: not a tie\n  {list(a)}\n  {list(b)}")
        tied.append(i)
    return tied


def assert_beam_agrees(model, sources: Sequence[Sequence[int]], ours: Sequence[Sequence[int]],
                       theirs: Sequence[Sequence[int]], opts: DecodeOptions, *, theirs_renormalised: bool = False,
                       tol: float = TOL) -> list[int]:
    """Best beam hypotheses equal, or each at least as good as the other under its own engine's scoring
    (a tie); -> tied indices."""
    assert len(ours) == len(theirs)
    tied = []
    for i, (src, a, b) in enumerate(zip(sources, ours, theirs)):
        if list(a) == list(b):
            continue
        ours_a, ours_b = (hypothesis_score(model, src, h, opts) for h in (a, b))
        theirs_a, theirs_b = (hypothesis_score(model, src, h, opts, renormalised=theirs_renormalised) for h in (a, b))
        assert ours_a >= ours_b - tol and theirs_b >= theirs_a - tol, (
            f"sentence {i} {list(src)}: not a tie: ours {list(a)} scores {ours_a:.6f} (theirs {theirs_a:.6f}), "
            f"theirs {list(b)} scores {ours_b:.6f} (theirs {theirs_b:.6f})")
        tied.append(i)
    return tied
