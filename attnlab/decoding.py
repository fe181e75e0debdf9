"""Greedy, sampling and beam search over a trained encoder-decoder, and the forced decode of a given output;
knows only encode / start_decoding / decode_step (and decode / logits, to re-run the prefix without a cache
and to score given outputs).

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

Around the searches (`DecodeConfig`'s fields, off by default): `n_best` hypotheses per sentence; a target
prefix per sentence that the first steps are forced through (its tokens' log-probabilities counted);
sampling (`path_search`: top-k or nucleus (Holtzman et al. 2020) draws from softmax(log P / temperature),
from a generator seeded with `seed`); and CTranslate2's length controls, `max_decoding_length`,
`min_decoding_length`, `no_repeat_ngram_size` and `repetition_penalty` (Keskar et al. 2019), all applied to
the next-token distribution in one place (`_constrain`). A hypothesis's log_prob is the sum of its tokens'
log-probabilities under that distribution; without repetition_penalty it equals `force_decode`'s.

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
from collections.abc import Callable, Sequence
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


Prefixes = Sequence[Sequence[int]] | None  # per sentence, target ids that its outputs start with


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
    """The longest output of a sentence of n_src source tokens: max_decoding_length when set, otherwise
    floor(a · n_src + b); at least 1."""
    if opts.max_decoding_length:
        return opts.max_decoding_length
    return max(1, math.floor(opts.max_len_a * n_src + opts.max_len_b))


def max_output_lengths(src: Tensor, opts: DecodeOptions, prefixes: Prefixes = None) -> list[int]:
    """Per sentence of src (B,S): `output_limit` of its non-pad source tokens, and room for one token after
    its target prefix (if any)."""
    limits = [output_limit(n, opts) for n in (src != opts.pad_id).sum(dim=1).tolist()]
    return limits if prefixes is None else [max(n, len(p) + 1) for n, p in zip(limits, prefixes)]


def search(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None,
           prefixes: Prefixes = None) -> list[list[int]]:
    """The best output of each sentence: `search_hypotheses`'s first."""
    return [hyps[0].tokens if hyps else [] for hyps in search_hypotheses(model, src, opts, prefixes)]


def search_hypotheses(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None,
                      prefixes: Prefixes = None) -> list[list[Hypothesis]]:
    """Per sentence of src (B,S), opts.n_best hypotheses, best first: sampled when opts.sample is set, greedy
    when opts.beam == 1, beam search otherwise. prefixes: per sentence, target ids every output starts with."""
    opts = opts or DecodeOptions()
    if opts.sample or opts.beam == 1:
        return path_search(model, src, opts, prefixes)
    return [hyps[: opts.n_best] for hyps in beam_search_nbest(model, src, opts, prefixes)]


def greedy_search(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None,
                  prefixes: Prefixes = None) -> list[list[int]]:
    """src (B,S) right-padded ids -> B lists of ids: the most likely token at every step until <eos>.

    A sentence that reaches its maximum length stops there (its output has no <eos> to strip).
    """
    opts = dataclasses.replace(opts or DecodeOptions(), sample="", n_best=1)
    return [hyps[0].tokens for hyps in path_search(model, src, opts, prefixes)]


def path_search(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None,
                prefixes: Prefixes = None) -> list[list[Hypothesis]]:
    """src (B,S) -> per sentence, one path of one token per step until <eos>: the most likely token (greedy),
    or with opts.sample a token drawn from the top-k / top-p of the next-token distribution (divided by
    opts.temperature), opts.n_best independent draws per sentence, from a generator seeded with opts.seed.
    Each path's log_prob is the model's (after the options' constraints, before temperature and cut-off)."""
    opts = opts or DecodeOptions()
    _check(model, src, opts)
    draws = opts.n_best if opts.sample else 1
    if draws > 1:  # every draw is a row of its own
        src = src.repeat_interleave(draws, dim=0)  # (B·n,S)
        prefixes = None if prefixes is None else [p for p in prefixes for _ in range(draws)]
    n, device = src.size(0), src.device  # n = B · draws paths
    limits = torch.tensor(max_output_lengths(src, opts, prefixes), device=device)  # (n,)
    out = torch.full((n, int(limits.max())), opts.pad_id, dtype=torch.long, device=device)  # (n,L) generated ids
    kept = limits.clone()  # (n,) tokens each output keeps: its limit, or the tokens before its <eos>
    log_prob = torch.zeros(n, device=device)  # (n,) summed log-probabilities of the kept tokens (and <eos>)
    with_eos = torch.zeros(n, dtype=torch.bool, device=device)  # (n,) the output ended with <eos>
    generator = torch.Generator(device=device).manual_seed(opts.seed) if opts.sample else None
    with torch.inference_mode():
        stepper = _Stepper(model, model.encode(src), opts, prefixes=prefixes)
        rows = torch.arange(n, device=device)  # (N,) the path of each live row
        row_limits = limits
        prefix = torch.full((n, 1), opts.bos_id, dtype=torch.long, device=device)  # (N,T); (N,1) with a cache
        for step in range(out.size(1)):
            log_probs = stepper.log_probs(prefix, rows, lambda: out[rows, :step])  # (N,V)
            tokens, chosen = _choose(log_probs, opts, generator)  # (N,), (N,)
            out[rows, step] = tokens
            log_prob[rows] += chosen
            ended = tokens == opts.eos_id  # (N,)
            done = ended | (row_limits <= step + 1)
            n_done = int(done.sum())
            if n_done:
                kept[rows[ended]] = step
                with_eos[rows[ended]] = True
                if n_done == rows.numel():
                    break
            # with a cache the model needs only the newest token; without one, the whole prefix
            prefix = tokens[:, None] if opts.use_cache else torch.cat([prefix, tokens[:, None]], dim=1)
            if n_done:
                keep = (~done).nonzero().squeeze(1)  # (N',)
                rows, row_limits, prefix = rows[keep], row_limits[keep], prefix[keep]
                stepper.select(keep)
    hyps = []
    for ids, length, lp, eos in zip(out.tolist(), kept.tolist(), log_prob.tolist(), with_eos.tolist()):
        counted = length + int(eos)
        hyps.append(Hypothesis(ids[:length], lp / length_penalty(counted, opts.length_penalty), lp, counted))
    groups = [hyps[i:i + draws] for i in range(0, n, draws)]
    return [sorted(g, key=lambda h: h.score, reverse=True) for g in groups]


def _choose(log_probs: Tensor, opts: DecodeOptions, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """log_probs (N,V) -> the next token of each row (N,) and its log-probability (N,): the argmax, or a
    draw from the top-k / top-p tokens of softmax(log_probs / temperature) when opts.sample is set."""
    if not opts.sample:
        best, tokens = top_k(log_probs, 1)  # (N,1) each
        return tokens.squeeze(1), best.squeeze(1)
    scaled = log_probs / opts.temperature  # (N,V)
    if opts.sample == "topk":
        cut = scaled.topk(min(opts.top_k, scaled.size(1)), dim=1).values[:, -1:]  # (N,1) the k-th largest
        scaled = scaled.masked_fill(scaled < cut, -math.inf)
    else:  # nucleus: the fewest most likely tokens whose probabilities sum to at least top_p
        ordered, order = scaled.sort(dim=1, descending=True)  # (N,V)
        probs = ordered.softmax(dim=1)  # (N,V)
        before = probs.cumsum(dim=1) - probs  # (N,V) the probability ranked above each token
        ordered = ordered.masked_fill(before >= opts.top_p, -math.inf)  # the first token always stays
        scaled = torch.full_like(scaled, -math.inf).scatter(1, order, ordered)
    tokens = torch.multinomial(scaled.softmax(dim=1), 1, generator=generator)  # (N,1)
    return tokens.squeeze(1), log_probs.gather(1, tokens).squeeze(1)


def beam_search(model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None,
                prefixes: Prefixes = None) -> list[list[int]]:
    """src (B,S) -> B lists of ids: the best finished hypothesis of each sentence (see the module docstring)."""
    return [hyps[0].tokens if hyps else [] for hyps in beam_search_nbest(model, src, opts, prefixes)]


@dataclass
class _Step:
    """One step's 2K best continuations of each live sentence, best first."""

    scores: Tensor  # (B',2K) summed log-probabilities (-inf: no such continuation)
    rows: Tensor  # (B',2K) parent row in the N live rows
    tokens: Tensor  # (B',2K) the token that extends it


def _top_continuations(log_probs: Tensor, scores: Tensor, k: int) -> _Step:
    """log_probs (N,V) of N = B'·K rows, scores (N,) -> each sentence's top 2K of its K·V continuations."""
    n, vocab = log_probs.shape
    width = min(2 * k, vocab)
    top_log_probs, top_tokens = top_k(log_probs, width)  # (N,W): a row's best candidates are among its best W
    candidates = (top_log_probs + scores[:, None]).view(n // k, k * width)  # (B',K·W)
    best, index = candidates.topk(min(2 * k, k * width), dim=1)  # (B',2K)
    rows = index // width + torch.arange(0, n, k, device=log_probs.device)[:, None]  # (B',2K)
    return _Step(best, rows, top_tokens.view(n // k, k * width).gather(1, index))


def beam_search_nbest(
    model: Seq2SeqModel, src: Tensor, opts: DecodeOptions | None = None, prefixes: Prefixes = None
) -> list[list[Hypothesis]]:
    """src (B,S) -> per sentence, up to K finished hypotheses, best (highest length-penalised score) first.
    prefixes: per sentence, target ids that every hypothesis starts with (forced, their log-probs counted)."""
    opts = opts or DecodeOptions()
    _check(model, src, opts)
    k, n_sent, device = opts.beam, src.size(0), src.device
    limits = torch.tensor(max_output_lengths(src, opts, prefixes), device=device)  # (B,)
    finished: list[list[Hypothesis]] = [[] for _ in range(n_sent)]
    n_finished = torch.zeros(n_sent, dtype=torch.long, device=device)  # (B,)
    with torch.inference_mode():
        # K rows per sentence; all beams start as <bos>, and only the first may extend at step 1.
        expand = torch.arange(n_sent, device=device).repeat_interleave(k)  # (N,)
        stepper = _Stepper(model, model.encode(src), opts, expand, beams=k, prefixes=prefixes)
        sentences = torch.arange(n_sent, device=device)  # (B',) live sentences; sentence j owns rows j*K .. j*K+K-1
        prefix = torch.full((n_sent * k, 1), opts.bos_id, dtype=torch.long, device=device)  # (N,T)
        first = torch.tensor([0.0] + [-math.inf] * (k - 1), device=device)
        scores = first.repeat(n_sent)  # (N,) summed log-probs of the beams
        rank = torch.arange(2 * k, device=device)  # (2K,)
        length = 0  # tokens generated by every live beam
        while True:
            row_sentences = sentences.repeat_interleave(k)  # (N,)
            step = _top_continuations(stepper.log_probs(prefix, row_sentences, lambda: prefix[:, 1:]), scores, k)
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


@dataclass
class Forced:
    """What the model gives a known output (teacher forcing): its score, token by token, and the attention."""

    token_log_probs: list[list[float]]  # per sentence: log P(y_t | y_<t, x) of each target token, then of <eos>
    cross: list[Tensor] | None  # per sentence (L,H,T+1,S_b) cross-attention (need_weights); row t produced y_t


def force_decode(model: Seq2SeqModel, src: Tensor, targets: Sequence[Sequence[int]],
                 opts: DecodeOptions | None = None, need_weights: bool = False) -> Forced:
    """src (B,S) and one target (ids, without <bos>/<eos>) per sentence -> `Forced`: one pass of the model's
    `encode` / `decode` / `logits` over <bos> y, scored against y <eos> (a plain softmax over the vocabulary,
    as the searches score: their log_prob of an output equals the sum here when no option reshapes it)."""
    opts = opts or DecodeOptions()
    _check(model, src, opts)
    if len(targets) != src.size(0):
        raise ValueError(f"{len(targets)} targets for {src.size(0)} sentences")
    width = max(len(t) for t in targets) + 1
    tgt_in = torch.full((len(targets), width), opts.pad_id, dtype=torch.long, device=src.device)  # (B,T+1)
    tgt_out = tgt_in.clone()  # (B,T+1) what each position should predict
    for r, t in enumerate(targets):
        tgt_in[r, : len(t) + 1] = torch.tensor([opts.bos_id, *t])
        tgt_out[r, : len(t) + 1] = torch.tensor([*t, opts.eos_id])
    with torch.inference_mode():
        out = model.decode(tgt_in, memory=model.encode(src), need_weights=need_weights)
        log_probs = model.logits(out.hidden).float().log_softmax(dim=2)  # (B,T+1,V)
        picked = log_probs.gather(2, tgt_out[:, :, None]).squeeze(2)  # (B,T+1)
    n_src = (src != opts.pad_id).sum(dim=1).tolist()
    cross = None
    if need_weights:
        stacked = torch.stack(out.cross_attention, dim=1).float()  # (B,L,H,T+1,S)
        cross = [stacked[r, :, :, : len(t) + 1, : n_src[r]] for r, t in enumerate(targets)]
    return Forced([row[: len(t) + 1] for row, t in zip(picked.tolist(), targets)], cross)


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
    """Next-token logits for live rows, incrementally (KV cache) or by re-running the prefix, and their
    log-probabilities under the options' rules and the sentences' forced prefixes."""

    def __init__(self, model: Seq2SeqModel, memory: Any, opts: DecodeOptions, expand: Tensor | None = None,
                 beams: int = 1, prefixes: Prefixes = None) -> None:
        """expand (N,): the sentence of each row, when sentences get `beams` rows each (sentence-major).
        prefixes: per sentence, the target ids its first steps are forced to."""
        self.model, self.opts = model, opts
        self.memory, self.state = memory, None
        self.specials: Tensor | None = None
        self.steps = 0  # tokens generated so far by every live row
        self.forced: Tensor | None = None  # (B,P) each sentence's prefix ids, -1 after its end
        if prefixes is not None and any(prefixes):
            width = max(len(p) for p in prefixes)
            self.forced = torch.tensor([[*p, *[-1] * (width - len(p))] for p in prefixes],
                                       dtype=torch.long, device=_memory_device(memory))
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

    def log_probs(self, prefix: Tensor, sentences: Tensor, history: Callable[[], Tensor]) -> Tensor:
        """prefix (N,T) as for `logits`, sentences (N,) the sentence of each row, history() the (N,t) ids each
        row has generated -> (N,V) next-token log-probabilities under the options' rules (see `_constrain`);
        call once per step."""
        step, self.steps = self.steps, self.steps + 1
        forced = None
        if self.forced is not None and step < self.forced.size(1):
            forced = self.forced[sentences, step]  # (N,) the forced token, -1 where the prefix has ended
        return self.never_emitted(_constrain(self.logits(prefix), self.opts, step, history, forced))

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


def _constrain(logits: Tensor, opts: DecodeOptions, step: int, history: Callable[[], Tensor],
               forced: Tensor | None) -> Tensor:
    """Next-token logits (N,V) -> log-probabilities (N,V) under the options' rules, at `step` (tokens generated):
    repetition_penalty divides a positive logit of a token already generated by the penalty and multiplies a
    negative one (Keskar et al. 2019, CTRL), before the softmax; then <eos> is forbidden before
    min_decoding_length, every token that would repeat an n-gram of no_repeat_ngram_size is forbidden, and a
    row with a forced token (forced (N,) >= 0) may only take that one, at its own log-probability."""
    if opts.repetition_penalty != 1.0 and step:
        seen = history()  # (N,t)
        picked = logits.gather(1, seen)  # (N,t)
        penalised = torch.where(picked > 0, picked / opts.repetition_penalty, picked * opts.repetition_penalty)
        logits = logits.scatter(1, seen, penalised)
    log_probs = logits.log_softmax(dim=1)  # (N,V), normalised over all V (<pad>/<bos> too)
    keep = None if forced is None else log_probs.gather(1, forced.clamp(min=0)[:, None])  # (N,1)
    if step < opts.min_decoding_length:
        log_probs[:, opts.eos_id] = -math.inf
    if opts.no_repeat_ngram_size and step >= opts.no_repeat_ngram_size:
        _ban_repeats(log_probs, history(), opts.no_repeat_ngram_size)
    if forced is not None:
        rows = (forced >= 0).nonzero().squeeze(1)  # (F,)
        log_probs[rows] = -math.inf
        log_probs[rows, forced[rows]] = keep[rows, 0]
    return log_probs


def _ban_repeats(log_probs: Tensor, history: Tensor, n: int) -> None:
    """In place: -inf for each token that would end an n-gram already in the row's history (N,t)."""
    if history.size(1) < n:
        return
    windows = history.unfold(1, n, 1)  # (N,W,n) every n-gram of each row
    tail = history[:, history.size(1) - n + 1:]  # (N,n-1) what the next token would extend
    match = (windows[:, :, :-1] == tail[:, None, :]).all(dim=2)  # (N,W)
    rows, where = match.nonzero(as_tuple=True)
    log_probs[rows, windows[rows, where, -1]] = -math.inf


def _memory_device(memory: Any) -> torch.device:
    """The device of a memory: a tensor, or the first tensor field of a dataclass."""
    if isinstance(memory, Tensor):
        return memory.device
    return next(v.device for v in vars(memory).values() if isinstance(v, Tensor))


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
