"""Greedy and beam search over a trained encoder-decoder; knows only encode / start_decoding / decode / logits.

Nothing here knows about tokenization or model internals: ids in, ids out (<bos>/<eos> stripped).
Both searches are batched: all sentences step together, and a sentence leaves the batch (`select`) as
soon as it is finished, so no work is spent on it afterwards.

Beam search follows fairseq's `SequenceGenerator` (Ott et al. 2019) with the GNMT length penalty
(Wu et al. 2016, eq. 14):  score = log P(y | x) / lp(|y|),  lp(n) = ((5 + n) / 6) ** α,
where |y| counts the generated tokens including <eos>.

Stopping rule (fairseq's): each step ranks the 2K best continuations of a sentence's K beams by
log-probability. An <eos> continuation ranked among the top K finishes a hypothesis; the best K
continuations that are not <eos> become the next beams. A sentence is done once K hypotheses have
finished (each finished hypothesis has used up one beam slot), or when it reaches its maximum output
length, where the top K continuations are finished as they stand (without <eos>). The best hypothesis
is then the finished one with the highest length-penalised score. With K = 1 this is exactly greedy
search. (A bound-based rule, "stop when no beam could still beat the best finished score", would also
be correct for the penalised objective, but with α > 0 a long continuation can still overtake an early
<eos>, so it searches longer and beam 1 would no longer equal greedy.)

The model must be in eval mode (`model.eval()`: no dropout); the caller sets it, and the searches raise
ValueError otherwise. Everything runs under `torch.inference_mode()`.

Shape letters: B sentences, K beams, N live rows (sentences × beams still searching), T prefix length
(including <bos>), V vocabulary.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from attnlab.config import DecodeConfig


@dataclass
class DecodeOptions:
    beam: int = 4  # beam size K (1: greedy)
    length_penalty: float = 0.6  # GNMT α: score = logprob_sum / ((5 + len) / 6) ** α; 0 ranks by log-prob
    max_len_a: float = 1.5  # output length limit floor(a * source_length + b), source pads not counted
    max_len_b: int = 10
    use_cache: bool = True  # False: re-run the decoder on the whole prefix each step (the readable reference)
    bos_id: int = 1  # fed as the first target token; never emitted
    eos_id: int = 2  # ends a hypothesis; stripped from the output
    pad_id: int = 0  # source padding (must be the model's pad_id); never emitted

    @classmethod
    def from_config(cls, cfg: DecodeConfig, **overrides: Any) -> DecodeOptions:
        """Options from the `[decode]` config table (special ids keep their defaults unless overridden)."""
        return cls(beam=cfg.beam, length_penalty=cfg.length_penalty, max_len_a=cfg.max_len_a,
                   max_len_b=cfg.max_len_b, **overrides)


class Seq2SeqModel(Protocol):
    """What the searches use of a model (Seq2SeqTransformer has it; tests pass hand-written fakes)."""

    pad_id: int
    training: bool

    def encode(self, src: Tensor) -> Any: ...  # src (B,S) -> memory: a dataclass of (B, ...) tensors
    def start_decoding(self, memory: Any) -> Any: ...  # -> state with .select(index (N',))
    def decode(self, tgt: Tensor, memory: Any = None, state: Any = None) -> Any: ...  # -> .hidden (N,T,D)
    def logits(self, hidden: Tensor) -> Tensor: ...  # (N,T,D) -> (N,T,V)


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids, without <bos> and <eos>
    score: float  # log_prob / lp(length): what beam search ranks by
    log_prob: float  # sum of the token log-probabilities (the <eos> included when it ended with one)
    length: int  # generated tokens counted by the penalty: len(tokens), + 1 when it ended with <eos>


def length_penalty(length: int, alpha: float) -> float:
    """GNMT lp(n) = ((5 + n) / 6) ** α; lp(1) = 1 for every α."""
    return ((5 + length) / 6) ** alpha


def max_output_lengths(src: Tensor, opts: DecodeOptions) -> list[int]:
    """Per sentence: floor(a * non-pad source tokens + b), at least 1."""
    src_lens = (src != opts.pad_id).sum(dim=1).tolist()  # (B,)
    return [max(1, math.floor(opts.max_len_a * n + opts.max_len_b)) for n in src_lens]


def search(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None) -> list[list[int]]:
    """Greedy when opts.beam == 1, beam search otherwise."""
    opts = opts or DecodeOptions()
    return greedy_search(model, src, opts) if opts.beam == 1 else beam_search(model, src, opts)


def greedy_search(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None) -> list[list[int]]:
    """src (B,S) right-padded ids -> B lists of ids: the most likely token at every step until <eos>.

    A sentence that reaches its maximum length stops there (its output has no <eos> to strip).
    """
    opts = opts or DecodeOptions()
    _check(model, src, opts)
    limits = max_output_lengths(src, opts)
    outputs: list[list[int]] = [[] for _ in range(src.size(0))]
    with torch.inference_mode():
        stepper = _Stepper(model, model.encode(src), opts)
        sentences = list(range(src.size(0)))  # the sentence of each live row
        prefix = torch.full((src.size(0), 1), opts.bos_id, dtype=torch.long, device=src.device)  # (N,1)
        while True:
            tokens = stepper.log_probs(prefix).argmax(dim=-1)  # (N,)
            keep = []
            for row, (b, token) in enumerate(zip(sentences, tokens.tolist())):
                if token != opts.eos_id:
                    outputs[b].append(token)
                    if len(outputs[b]) < limits[b]:
                        keep.append(row)
            if not keep:
                return outputs
            prefix = torch.cat([prefix, tokens[:, None]], dim=1)  # (N,T+1)
            if len(keep) < len(sentences):
                index = torch.tensor(keep, device=src.device)
                sentences = [sentences[row] for row in keep]
                prefix = prefix.index_select(0, index)
                stepper.select(index)


def beam_search(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None) -> list[list[int]]:
    """src (B,S) -> B lists of ids: the best finished hypothesis of each sentence (see the module docstring)."""
    return [hyps[0].tokens if hyps else [] for hyps in beam_search_nbest(model, src, opts)]


def beam_search_nbest(
    model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None
) -> list[list[Hypothesis]]:
    """src (B,S) -> per sentence, up to K finished hypotheses, best (highest length-penalised score) first."""
    opts = opts or DecodeOptions()
    _check(model, src, opts)
    k, n_sent, device = opts.beam, src.size(0), src.device
    limits = max_output_lengths(src, opts)
    finished: list[list[Hypothesis]] = [[] for _ in range(n_sent)]
    with torch.inference_mode():
        # K rows per sentence; all beams start as <bos>, and only the first may extend at step 1.
        stepper = _Stepper(model, model.encode(src), opts, torch.arange(n_sent, device=device).repeat_interleave(k))
        sentences = list(range(n_sent))  # live sentences; sentence j owns rows j*K .. j*K + K - 1
        prefix = torch.full((n_sent * k, 1), opts.bos_id, dtype=torch.long, device=device)  # (N,1)
        first = torch.tensor([0.0] + [-math.inf] * (k - 1), device=device)
        scores = first.repeat(n_sent)  # (N,) summed log-probs of the beams
        length = 0  # tokens generated by every live beam
        while sentences:
            log_probs = stepper.log_probs(prefix)  # (N,V)
            vocab = log_probs.size(-1)
            candidates = (scores[:, None] + log_probs).view(len(sentences), k * vocab)  # (B',K*V)
            top_scores, top_ids = candidates.topk(min(2 * k, k * vocab), dim=1)  # (B',2K), best first
            length += 1
            rows, tokens, new_scores, live = [], [], [], []
            for j, (b, cand_scores, cand_ids) in enumerate(zip(sentences, top_scores.tolist(), top_ids.tolist())):
                beams = _advance(
                    [(s, j * k + i // vocab, i % vocab) for s, i in zip(cand_scores, cand_ids)],
                    prefix, length, limits[b], finished[b], opts,
                )
                if beams:
                    live.append(b)
                    rows += [row for row, _, _ in beams]
                    tokens += [token for _, token, _ in beams]
                    new_scores += [s for _, _, s in beams]
            if not live:
                break
            index = torch.tensor(rows, device=device)  # (N',) the parent row of each new beam
            next_tokens = torch.tensor(tokens, device=device)
            prefix = torch.cat([prefix.index_select(0, index), next_tokens[:, None]], dim=1)  # (N',T+1)
            scores = torch.tensor(new_scores, device=device)
            stepper.select(index)
            sentences = live
    return [sorted(hyps, key=lambda h: h.score, reverse=True)[:k] for hyps in finished]


def _advance(
    candidates: list[tuple[float, int, int]],
    prefix: Tensor,
    length: int,
    limit: int,
    finished: list[Hypothesis],
    opts: DecodeOptions,
) -> list[tuple[int, int, float]]:
    """One sentence's step. candidates: the 2K best (score, parent row, token), best first.

    Appends the hypotheses that finish to `finished`; returns the K next beams (parent row, token, score),
    or [] when the sentence is done.
    """
    k, last = opts.beam, length >= limit
    beams: list[tuple[int, int, float]] = []
    for rank, (score, row, token) in enumerate(candidates):
        if score == -math.inf or len(beams) == k:
            break
        if token == opts.eos_id or last:
            if rank < k:  # an <eos> below the top K would not have held a beam slot
                tokens = prefix[row, 1:].tolist() + ([] if token == opts.eos_id else [token])
                finished.append(Hypothesis(tokens, score / length_penalty(length, opts.length_penalty), score, length))
        else:
            beams.append((row, token, score))
    if last or len(finished) >= k or not beams:
        return []
    # Fewer than K finite continuations (only with a tiny or degenerate vocabulary): dead beams fill up.
    beams += [(beams[0][0], beams[0][1], -math.inf)] * (k - len(beams))
    return beams


class _Stepper:
    """Next-token log-probabilities for live rows, incrementally (KV cache) or by re-running the prefix."""

    def __init__(self, model: Seq2SeqModel, memory: Any, opts: DecodeOptions, expand: Tensor | None = None) -> None:
        self.model, self.opts = model, opts
        self.memory, self.state = memory, None
        if opts.use_cache:
            self.state = model.start_decoding(memory)  # cross-attention k/v once per sentence
            if expand is not None:
                self.state.select(expand)
        elif expand is not None:
            self.memory = _select_rows(memory, expand)

    def log_probs(self, prefix: Tensor) -> Tensor:
        """prefix (N,T) ids starting with <bos> -> (N,V) log-probabilities of the next token, PAD/BOS at -inf."""
        if self.state is not None:
            hidden = self.model.decode(prefix[:, -1:], state=self.state).hidden  # only the new position
        else:
            hidden = self.model.decode(prefix, memory=self.memory).hidden  # (N,T,D): the whole prefix again
        log_probs = self.model.logits(hidden[:, -1]).float().log_softmax(dim=-1)  # (N,V)
        log_probs[:, [self.opts.pad_id, self.opts.bos_id]] = -math.inf  # never emitted
        return log_probs

    def select(self, index: Tensor) -> None:
        """Keep (and reorder) rows: index (N',)."""
        if self.state is not None:
            self.state.select(index)
        else:
            self.memory = _select_rows(self.memory, index)


def _select_rows(memory: Any, index: Tensor) -> Any:
    """index_select(0, index) on every tensor (or list of tensors) field of a memory dataclass."""
    changes = {}
    for f in dataclasses.fields(memory):
        value = getattr(memory, f.name)
        if isinstance(value, Tensor):
            changes[f.name] = value.index_select(0, index)
        elif isinstance(value, list):
            changes[f.name] = [v.index_select(0, index) for v in value]
    return dataclasses.replace(memory, **changes)


def _check(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions) -> None:
    if model.training:
        raise ValueError("decoding needs the model in eval mode (call model.eval() first): dropout is on")
    if opts.beam < 1:
        raise ValueError(f"beam must be at least 1, got {opts.beam}")
    if src.dim() != 2:
        raise ValueError(f"src must be (batch, length) ids, got shape {tuple(src.shape)}")
    if getattr(model, "pad_id", opts.pad_id) != opts.pad_id:
        raise ValueError(f"opts.pad_id ({opts.pad_id}) differs from the model's pad_id ({model.pad_id})")
