"""Greedy and beam search over a trained encoder-decoder; knows only encode / start_decoding / decode_step
(and decode / logits, to re-run the prefix without a cache).

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

Per step, the work is done on whole tensors: which rows end, which candidates finish and which become
the next beams are tensor operations over the batch; Python runs once per step and once per finished
hypothesis, never once per live row. Beam search ranks candidates in two stages with the same result as
one top-2K over the K·V continuations of a sentence: each row's best 2K tokens, then the best 2K of the
sentence's K·2K.

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
from attnlab.tokenizer import BOS, EOS, PAD


@dataclass(frozen=True)
class DecodeOptions(DecodeConfig):
    """The `[decode]` config table's fields (their defaults and checks), plus the tokenizer's special ids and
    whether to use the KV cache."""

    use_cache: bool = True  # False: re-run the decoder on the whole prefix each step (the readable reference)
    bos_id: int = BOS  # fed as the first target token; never emitted
    eos_id: int = EOS  # ends a hypothesis; stripped from the output
    pad_id: int = PAD  # source padding (must be the model's pad_id); never emitted

    @classmethod
    def from_config(cls, cfg: DecodeConfig, **overrides: Any) -> DecodeOptions:
        """Options from the `[decode]` config table, with `overrides` (e.g. beam=1) on top."""
        return cls(**{**dataclasses.asdict(cfg), **overrides})


class Seq2SeqModel(Protocol):
    """What the searches use of a model (Seq2SeqTransformer has it; tests pass hand-written fakes)."""

    pad_id: int
    training: bool

    def encode(self, src: Tensor) -> Any: ...  # src (B,S) -> memory: a dataclass of (B, ...) tensors
    def start_decoding(self, memory: Any) -> Any: ...  # -> state with .select(index (N',))
    def decode_step(self, tgt: Tensor, state: Any) -> Tensor: ...  # tgt (N,1) -> next-token logits (N,V)
    def decode(self, tgt: Tensor, memory: Any = None) -> Any: ...  # the whole prefix -> .hidden (N,T,D)
    def logits(self, hidden: Tensor) -> Tensor: ...  # (N,D) -> (N,V)


@dataclass
class Hypothesis:
    tokens: list[int]  # generated ids, without <bos> and <eos>
    score: float  # log_prob / lp(length): what beam search ranks by
    log_prob: float  # sum of the token log-probabilities (the <eos> included when it ended with one)
    length: int  # generated tokens counted by the penalty: len(tokens), + 1 when it ended with <eos>


def length_penalty(length: int, alpha: float) -> float:
    """GNMT lp(n) = ((5 + n) / 6) ** α; lp(1) = 1 for every α."""
    return ((5 + length) / 6) ** alpha


def output_limit(n_src: int, opts: DecodeConfig) -> int:
    """The longest output of a sentence of n_src source tokens: floor(a · n_src + b), at least 1."""
    return max(1, math.floor(opts.max_len_a * n_src + opts.max_len_b))


def max_output_lengths(src: Tensor, opts: DecodeOptions) -> list[int]:
    """Per sentence of src (B,S): `output_limit` of its non-pad source tokens."""
    return [output_limit(n, opts) for n in (src != opts.pad_id).sum(dim=1).tolist()]


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
    n, device = src.size(0), src.device
    limits = torch.tensor(max_output_lengths(src, opts), device=device)  # (B,)
    out = torch.full((n, int(limits.max())), opts.pad_id, dtype=torch.long, device=device)  # (B,L) generated ids
    kept = limits.clone()  # (B,) tokens each output keeps: its limit, or the tokens before its <eos>
    with torch.inference_mode():
        stepper = _Stepper(model, model.encode(src), opts)
        rows = torch.arange(n, device=device)  # (N,) the sentence of each live row
        row_limits = limits
        prefix = torch.full((n, 1), opts.bos_id, dtype=torch.long, device=device)  # (N,T); (N,1) with a cache
        for step in range(out.size(1)):
            tokens = top_k(stepper.never_emitted(stepper.logits(prefix)), 1)[1].squeeze(1)  # (N,) the argmax
            out[rows, step] = tokens
            ended = tokens == opts.eos_id  # (N,)
            done = ended | (row_limits <= step + 1)
            n_done = int(done.sum())
            if n_done:
                kept[rows[ended]] = step
                if n_done == rows.numel():
                    break
            # with a cache the model needs only the newest token; without one, the whole prefix
            prefix = tokens[:, None] if opts.use_cache else torch.cat([prefix, tokens[:, None]], dim=1)
            if n_done:
                keep = (~done).nonzero().squeeze(1)  # (N',)
                rows, row_limits, prefix = rows[keep], row_limits[keep], prefix[keep]
                stepper.select(keep)
    return [ids[:length] for ids, length in zip(out.tolist(), kept.tolist())]


def beam_search(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None) -> list[list[int]]:
    """src (B,S) -> B lists of ids: the best finished hypothesis of each sentence (see the module docstring)."""
    return [hyps[0].tokens if hyps else [] for hyps in beam_search_nbest(model, src, opts)]


@dataclass
class _Step:
    """One step's 2K best continuations of each live sentence, best first."""

    scores: Tensor  # (B',2K) summed log-probabilities (-inf: no such continuation)
    rows: Tensor  # (B',2K) parent row in the N live rows
    tokens: Tensor  # (B',2K) the token that extends it


def _top_continuations(stepper: _Stepper, logits: Tensor, scores: Tensor, k: int) -> _Step:
    """logits (N,V) of N = B'·K rows, scores (N,) -> each sentence's top 2K of its K·V continuations."""
    n, vocab = logits.shape
    width = min(2 * k, vocab)
    log_probs = stepper.never_emitted(logits.log_softmax(dim=1))  # (N,V), normalised over all V (<pad>/<bos> too)
    top_log_probs, top_tokens = top_k(log_probs, width)  # (N,W): a row's best candidates are among its best W
    candidates = (top_log_probs + scores[:, None]).view(n // k, k * width)  # (B',K·W)
    best, index = candidates.topk(min(2 * k, k * width), dim=1)  # (B',2K)
    rows = index // width + torch.arange(0, n, k, device=logits.device)[:, None]  # (B',2K)
    return _Step(best, rows, top_tokens.view(n // k, k * width).gather(1, index))


def beam_search_nbest(
    model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None
) -> list[list[Hypothesis]]:
    """src (B,S) -> per sentence, up to K finished hypotheses, best (highest length-penalised score) first."""
    opts = opts or DecodeOptions()
    _check(model, src, opts)
    k, n_sent, device = opts.beam, src.size(0), src.device
    limits = torch.tensor(max_output_lengths(src, opts), device=device)  # (B,)
    finished: list[list[Hypothesis]] = [[] for _ in range(n_sent)]
    n_finished = torch.zeros(n_sent, dtype=torch.long, device=device)  # (B,)
    with torch.inference_mode():
        # K rows per sentence; all beams start as <bos>, and only the first may extend at step 1.
        expand = torch.arange(n_sent, device=device).repeat_interleave(k)  # (N,)
        stepper = _Stepper(model, model.encode(src), opts, expand, beams=k)
        sentences = torch.arange(n_sent, device=device)  # (B',) live sentences; sentence j owns rows j*K .. j*K+K-1
        prefix = torch.full((n_sent * k, 1), opts.bos_id, dtype=torch.long, device=device)  # (N,T)
        first = torch.tensor([0.0] + [-math.inf] * (k - 1), device=device)
        scores = first.repeat(n_sent)  # (N,) summed log-probs of the beams
        rank = torch.arange(2 * k, device=device)  # (2K,)
        length = 0  # tokens generated by every live beam
        while True:
            step = _top_continuations(stepper, stepper.logits(prefix), scores, k)
            length += 1
            finite, eos = step.scores > -math.inf, step.tokens == opts.eos_id  # (B',2K)
            last = limits[sentences] <= length  # (B',) the length limit: every top-K candidate finishes
            # An <eos> among the top K finishes a hypothesis (below the top K it never held a beam slot).
            ends = finite & (eos | last[:, None]) & (rank[: step.scores.size(1)] < k)  # (B',2K)
            if bool(ends.any()):
                _record(step, ends, eos, sentences, prefix, length, finished, opts)
                n_finished.index_add_(0, sentences, ends.sum(dim=1))
            # The next beams: the first K candidates that go on (finite, not <eos>); missing ones are dead.
            goes_on = finite & ~eos  # (B',2K)
            # a stable sort puts the candidates that go on (key 0) first, still in rank order
            pick = torch.sort((~goes_on).to(torch.uint8), dim=1, stable=True).indices[:, :k]  # (B',K)
            alive = goes_on.gather(1, pick)  # (B',K)
            pick = torch.where(alive, pick, pick[:, :1])  # a dead beam copies the first (its score is -inf)
            done = last | (n_finished[sentences] >= k) | ~alive[:, 0]  # (B',)
            n_done = int(done.sum())
            if n_done == sentences.numel():
                break
            keep = (~done).nonzero().squeeze(1) if n_done else None  # (B'',)
            new_scores = step.scores.gather(1, pick).masked_fill(~alive, -math.inf)  # (B',K)
            index, tokens = step.rows.gather(1, pick), step.tokens.gather(1, pick)  # (B',K)
            if keep is not None:
                sentences, index, tokens, new_scores = sentences[keep], index[keep], tokens[keep], new_scores[keep]
            index = index.view(-1)  # (N',) the parent row of each new beam
            prefix = torch.cat([prefix.index_select(0, index), tokens.view(-1, 1)], dim=1)  # (N',T+1)
            scores = new_scores.view(-1)
            stepper.select(index)
    return [sorted(hyps, key=lambda h: h.score, reverse=True)[:k] for hyps in finished]


def top_k(x: Tensor, k: int, block: int = 64) -> tuple[Tensor, Tensor]:
    """x (N,V) -> the k largest values of each row and their indices, (N,k) each, best first: `x.topk(k)`.

    Faster on CPU for a few rows over a large vocabulary: blocks of `block` columns are ranked by their maximum
    (`amax` is a vectorised reduction, several times faster than topk or argmax), and only the k best blocks
    are searched. The k largest values lie in those blocks: a block holding one of them has a maximum at least
    that large, and at most k - 1 other blocks can have a larger one.
    """
    n, v = x.shape
    body = v - v % block  # columns in whole blocks; the rest are searched directly
    if body < 4 * k * block or not x.is_contiguous():
        return x.topk(k, dim=1)
    blocks = x.as_strided((n, body // block, block), (x.stride(0), block, 1))  # (N,V/b,b) a view of x
    chosen = blocks.amax(dim=2).topk(k, dim=1).indices  # (N,k) the blocks with the k largest maxima
    values = blocks.gather(1, chosen[:, :, None].expand(n, k, block)).view(n, k * block)  # (N,k·b)
    index = (chosen[:, :, None] * block + torch.arange(block, device=x.device)).view(n, k * block)  # (N,k·b)
    if body < v:
        values = torch.cat([values, x[:, body:]], dim=1)  # (N,k·b + V mod b)
        index = torch.cat([index, torch.arange(body, v, device=x.device).expand(n, v - body)], dim=1)
    best, where = values.topk(k, dim=1)  # (N,k)
    return best, index.gather(1, where)


def _record(step: _Step, ends: Tensor, eos: Tensor, sentences: Tensor, prefix: Tensor, length: int,
            finished: list[list[Hypothesis]], opts: DecodeOptions) -> None:
    """Append the hypotheses that finish this step (ends (B',2K) True) to their sentences' lists."""
    where = ends.nonzero()  # (F,2): (live sentence, candidate rank)
    j, r = where[:, 0], where[:, 1]
    rows = step.rows[j, r]
    generated = prefix.index_select(0, rows)[:, 1:].tolist()  # (F,T-1) without <bos>
    lp = length_penalty(length, opts.length_penalty)
    for b, tokens, token, score, is_eos in zip(sentences[j].tolist(), generated, step.tokens[j, r].tolist(),
                                                step.scores[j, r].tolist(), eos[j, r].tolist()):
        tokens = tokens if is_eos else tokens + [token]
        finished[b].append(Hypothesis(tokens, score / lp, score, length))


class _Stepper:
    """Next-token logits for live rows, incrementally (KV cache) or by re-running the prefix."""

    def __init__(self, model: Seq2SeqModel, memory: Any, opts: DecodeOptions, expand: Tensor | None = None,
                 beams: int = 1) -> None:
        """expand (N,): the sentence of each row, when sentences get `beams` rows each (sentence-major)."""
        self.model, self.opts = model, opts
        self.memory, self.state = memory, None
        self.specials: Tensor | None = None
        if opts.use_cache:
            self.state = model.start_decoding(memory)  # cross-attention k/v once per sentence
            if beams > 1 and hasattr(self.state, "expand_beams"):
                self.state.expand_beams(beams)  # the beams share their sentence's memory rows
            elif expand is not None:
                self.state.select(expand)
        elif expand is not None:
            self.memory = _select_rows(memory, expand)

    def logits(self, prefix: Tensor) -> Tensor:
        """prefix (N,T) ids starting with <bos> -> (N,V) float logits of the next token."""
        if self.state is not None:
            return self.model.decode_step(prefix[:, -1:], self.state).float()  # only the new position
        hidden = self.model.decode(prefix, memory=self.memory).hidden  # (N,T,D): the whole prefix again
        return self.model.logits(hidden[:, -1]).float()  # (N,V)

    def never_emitted(self, logits: Tensor) -> Tensor:
        """<pad> and <bos> set to -inf, in place: (N,V) -> (N,V)."""
        if self.specials is None or self.specials.device != logits.device:
            self.specials = torch.tensor([self.opts.pad_id, self.opts.bos_id], device=logits.device)
        return logits.index_fill_(1, self.specials, -math.inf)

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
    if src.dim() != 2:
        raise ValueError(f"src must be (batch, length) ids, got shape {tuple(src.shape)}")
    if getattr(model, "pad_id", opts.pad_id) != opts.pad_id:
        raise ValueError(f"opts.pad_id ({opts.pad_id}) differs from the model's pad_id ({model.pad_id})")
