"""Tests for attnlab.decoding: greedy and beam search.

Two kinds of model: a tiny Seq2SeqTransformer trained for a few steps on a copy task (so that sentences
end at different lengths), for agreement tests (KV cache vs re-running the prefix, beam 1 vs greedy,
batched vs one sentence at a time); and a fake model whose next-token probabilities come from a table
keyed on the prefix, for beam searches worked out by hand (as in OpenNMT-py's beam tests).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.config import DecodeConfig, ModelConfig
from attnlab.decoding import (
    DecodeOptions,
    beam_search,
    beam_search_nbest,
    greedy_search,
    length_penalty,
    max_output_lengths,
    search,
    top_k,
)
from attnlab.errors import AttnlabError
from attnlab.model import Seq2SeqTransformer
from searches import TOL, assert_beam_agrees, assert_greedy_agrees

PAD, BOS, EOS = 0, 1, 2
VOCAB = 40


# ---------------------------------------------------------------- a tiny trained model

@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: one thread is faster, and immune to a busy second core."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def random_src(n: int, seed: int, max_len: int = 8) -> Tensor:
    """(n, max_len) ids in 4..VOCAB-1, right-padded to random lengths 1..max_len."""
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(1, max_len + 1, (n,), generator=g)
    src = torch.randint(4, VOCAB, (n, max_len), generator=g)
    return src.masked_fill(torch.arange(max_len)[None] >= lens[:, None], PAD)


@pytest.fixture(scope="module")
def model() -> Seq2SeqTransformer:
    """30 Adam steps on "copy the source, then <eos>": half-trained, so outputs end at various lengths."""
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=VOCAB, d_model=32, n_heads=4, d_ff=64, n_encoder_layers=2, n_decoder_layers=2,
                      dropout=0.0)
    m = Seq2SeqTransformer(cfg)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for step in range(30):
        src = random_src(32, seed=100 + step)
        lens = (src != PAD).sum(1)
        tgt = F.pad(src, (1, 1), value=PAD)  # (B, S+2): <bos> src <eos>, pads after
        tgt[:, 0] = BOS
        tgt[torch.arange(len(src)), lens + 1] = EOS
        logits = m(src, tgt[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tgt[:, 1:].reshape(-1), ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


@pytest.fixture(scope="module")
def src() -> Tensor:
    return random_src(12, seed=1)


def test_fixture_outputs_end_at_various_lengths(model, src):
    lengths = {len(out) for out in greedy_search(model, src, DecodeOptions(beam=1))}
    assert len(lengths) >= 3, lengths


def rows(src: Tensor) -> list[list[int]]:
    return [row[row != PAD].tolist() for row in src]


@pytest.mark.parametrize("beam", [1, 3])
def test_cached_equals_uncached(model, src, beam):
    """The KV-cache step and the re-run of the whole prefix round differently, so the two searches agree up
    to floating-point ties (tests/searches.py), and almost every output is identical."""
    run = greedy_search if beam == 1 else beam_search_nbest
    opts = DecodeOptions(beam=beam)
    cached = run(model, src, dataclasses.replace(opts, use_cache=True))
    uncached = run(model, src, dataclasses.replace(opts, use_cache=False))
    if beam == 1:
        assert len(assert_greedy_agrees(model, rows(src), cached, uncached, opts)) <= len(src) // 10
        return
    best = [hs[0].tokens for hs in cached], [us[0].tokens for us in uncached]
    assert len(assert_beam_agrees(model, rows(src), *best, opts)) <= len(src) // 10
    for hs, us in zip(cached, uncached):  # the whole n-best list, rank by rank
        assert [h.score for h in hs] == pytest.approx([u.score for u in us], abs=TOL)
        for h, u in zip(hs, us):  # the same hypothesis, unless its score ties with another one of the list
            assert h.tokens == u.tokens or any(abs(o.score - h.score) <= TOL for o in hs if o is not h)


@pytest.mark.parametrize("use_cache", [True, False])
def test_beam_1_is_greedy(model, src, use_cache):
    greedy = greedy_search(model, src, DecodeOptions(beam=1, use_cache=use_cache))
    assert beam_search(model, src, DecodeOptions(beam=1, use_cache=use_cache)) == greedy
    assert search(model, src, DecodeOptions(beam=1)) == greedy


def test_beam_4_finds_better_scores_than_greedy(model, src):
    """Not a guarantee of beam search in general, but on this model beam must change something."""
    greedy = greedy_search(model, src, DecodeOptions(beam=1))
    beam = beam_search(model, src, DecodeOptions(beam=4))
    assert greedy != beam


@pytest.mark.parametrize("beam", [1, 4])
def test_batched_equals_one_sentence_at_a_time(model, src, beam):
    """Padding and the other sentences of the batch do not change a sentence's output."""
    opts = DecodeOptions(beam=beam)
    batched = search(model, src, opts)
    alone = [search(model, torch.tensor([row]), opts)[0] for row in rows(src)]  # (1, S_i) each, no padding
    agree = assert_greedy_agrees if beam == 1 else assert_beam_agrees  # up to floating-point ties
    assert len(agree(model, rows(src), batched, alone, opts)) <= len(src) // 10


def test_finished_sentences_leave_the_batch(model, src):
    """Greedy: sentence b is decoded on exactly its own steps (its tokens, plus one for <eos>)."""
    spy = Spy(model)
    outputs = greedy_search(spy, src, DecodeOptions(beam=1))
    limits = max_output_lengths(src, DecodeOptions())
    steps = [len(out) if len(out) == limit else len(out) + 1 for out, limit in zip(outputs, limits)]
    assert spy.rows == sorted(spy.rows, reverse=True)
    assert sum(spy.rows) == sum(steps)
    assert spy.rows[0] == len(src) and spy.rows[-1] == steps.count(max(steps))


def test_beam_rows_are_sentences_times_beams(model, src):
    spy = Spy(model)
    beam_search(spy, src, DecodeOptions(beam=3))
    assert spy.rows[0] == 3 * len(src)
    assert all(rows % 3 == 0 for rows in spy.rows)
    assert spy.rows == sorted(spy.rows, reverse=True) and spy.rows[-1] < spy.rows[0]


@pytest.mark.parametrize("a, b", [(1.0, 0), (0.5, 1), (0.0, 2)])
@pytest.mark.parametrize("beam", [1, 3])
def test_max_length_is_reached_and_respected(model, src, a, b, beam):
    """With <eos> impossible, every output is exactly floor(a * src_len + b) tokens (at least 1)."""
    no_eos = EditLogits(model, lambda logits: logits.index_fill(-1, torch.tensor([EOS]), -math.inf))
    opts = DecodeOptions(beam=beam, max_len_a=a, max_len_b=b)
    src_lens = (src != PAD).sum(1).tolist()
    expected = [max(1, math.floor(a * n + b)) for n in src_lens]
    assert [len(out) for out in search(no_eos, src, opts)] == expected
    assert max_output_lengths(src, opts) == expected


@pytest.mark.parametrize("beam", [1, 3])
def test_never_emits_pad_or_bos(model, src, beam):
    """Even when the model puts nearly all probability on <pad> and <bos>."""
    boosted = EditLogits(model, lambda logits: logits.index_add(-1, torch.tensor([PAD, BOS]),
                                                                 torch.full((*logits.shape[:-1], 2), 50.0)))
    outputs = search(boosted, src, DecodeOptions(beam=beam))
    assert all(PAD not in out and BOS not in out for out in outputs)
    assert any(outputs)


def test_training_mode_is_refused(model, src):
    model.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            greedy_search(model, src)
    finally:
        model.eval()


def test_bad_beam_is_refused():
    """One check, where options are made (a DecodeConfig read from a file is checked by the same line)."""
    with pytest.raises(AttnlabError, match="decode.beam must be at least 1, got 0"):
        DecodeOptions(beam=0)
    with pytest.raises(AttnlabError, match="decode.beam must be at least 1, got 0"):
        DecodeOptions.from_config(DecodeConfig(), beam=0)


def test_options_from_config():
    opts = DecodeOptions.from_config(DecodeConfig(beam=5, length_penalty=1.0, max_len_a=2.0, max_len_b=3),
                                     use_cache=False)
    assert (opts.beam, opts.length_penalty, opts.max_len_a, opts.max_len_b, opts.use_cache) == (5, 1.0, 2.0, 3, False)


@pytest.mark.parametrize("n, alpha, expected", [
    (1, 0.6, 1.0),                     # lp(1) = 1 for any α
    (7, 1.0, 2.0),                     # (5 + 7) / 6
    (3, 0.5, math.sqrt(8 / 6)),
    (10, 0.0, 1.0),                    # α = 0: plain log-probability
])
def test_length_penalty(n, alpha, expected):
    assert length_penalty(n, alpha) == pytest.approx(expected)


class Spy:
    """Delegates to a model and records how many rows each decode call carries."""

    def __init__(self, model):
        self.model, self.pad_id, self.training, self.rows = model, model.pad_id, False, []

    def encode(self, src):
        return self.model.encode(src)

    def start_decoding(self, memory):
        return self.model.start_decoding(memory)

    def decode(self, tgt, memory=None):
        self.rows.append(tgt.size(0))
        return self.model.decode(tgt, memory=memory)

    def decode_step(self, tgt, state):
        self.rows.append(tgt.size(0))
        return self.model.decode_step(tgt, state)

    def logits(self, hidden):
        return self.model.logits(hidden)


class EditLogits(Spy):
    """A model whose logits are changed by `edit`."""

    def __init__(self, model, edit):
        super().__init__(model)
        self.edit = edit

    def logits(self, hidden):
        return self.edit(self.model.logits(hidden))

    def decode_step(self, tgt, state):
        return self.edit(super().decode_step(tgt, state))


# ---------------------------------------------------------------- hand-worked beams on a table "model"

A, B = 3, 4
NAMES = {"a": A, "b": B, "</s>": EOS}
LETTERS = {A: "a", B: "b"}


@dataclass
class TableMemory:
    src: Tensor  # (N, S)


class TableState:
    """The generated prefix so far is all this "model" needs to remember."""

    def __init__(self, n: int) -> None:
        self.prefix = torch.full((n, 0), PAD)

    @property
    def length(self) -> int:
        return self.prefix.size(1)

    def select(self, index: Tensor) -> None:
        self.prefix = self.prefix.index_select(0, index)


class TableModel:
    """Next-token probabilities from `table[generated prefix as letters]`; prefixes not listed: uniform over
    a, b, </s>. `decode` returns the log-probabilities themselves as `hidden`, and `logits` is the identity."""

    pad_id, training = PAD, False

    def __init__(self, table: dict[str, dict[str, float]]) -> None:
        self.table = table

    def encode(self, src: Tensor) -> TableMemory:
        return TableMemory(src)

    def start_decoding(self, memory: TableMemory) -> TableState:
        return TableState(memory.src.size(0))

    def decode(self, tgt: Tensor, memory: TableMemory | None = None, state: TableState | None = None):
        if state is not None:
            state.prefix = torch.cat([state.prefix, tgt], dim=1)
        prefix = state.prefix if state is not None else tgt  # (N, T), starting with <bos>
        t, total = tgt.size(1), prefix.size(1)
        hidden = [[self._log_probs(row[1:i + 1]) for i in range(total - t, total)] for row in prefix.tolist()]
        return SimpleNamespace(hidden=torch.tensor(hidden))  # (N, t, V)

    def _log_probs(self, generated: list[int]) -> list[float]:
        key = "".join(LETTERS.get(token, "?") for token in generated)
        probs = [0.0] * 5
        for name, p in self.table.get(key, {"a": 1 / 3, "b": 1 / 3, "</s>": 1 / 3}).items():
            probs[NAMES[name]] = p
        return [math.log(p) if p > 0 else -math.inf for p in probs]

    def logits(self, hidden: Tensor) -> Tensor:
        return hidden

    def decode_step(self, tgt: Tensor, state: TableState) -> Tensor:
        return self.decode(tgt, state=state).hidden[:, -1]


def letters(tokens: list[int]) -> str:
    return "".join(LETTERS[t] for t in tokens)


ONE_SRC = torch.tensor([[5, 6, 7]])  # 3 tokens: max length floor(1.5 * 3 + 10) = 14, never reached

# Greedy takes "a" (0.5 > 0.4) and then "a" again: P("a a </s>") = 0.5 * 0.4 * 0.9 = 0.18.
# The less likely first word "b" is followed by a confident </s>: P("b </s>") = 0.4 * 0.9 = 0.36.
GREEDY_TRAP = {
    "": {"a": 0.5, "b": 0.4, "</s>": 0.1},
    "a": {"a": 0.4, "b": 0.35, "</s>": 0.25},
    "b": {"</s>": 0.9, "a": 0.05, "b": 0.05},
    "aa": {"</s>": 0.9, "a": 0.05, "b": 0.05},
    "ab": {"</s>": 0.5, "a": 0.25, "b": 0.25},
}


def test_greedy_falls_into_the_trap():
    assert [letters(out) for out in greedy_search(TableModel(GREEDY_TRAP), ONE_SRC, DecodeOptions(beam=1))] == ["aa"]


def test_beam_2_by_hand():
    """Beam 2, α = 0.6; lp(n) = ((5 + n) / 6) ** 0.6: lp(2) = 1.096903, lp(3) = 1.188402.

    step 1: a ln .5 = -0.693 (rank 0), b ln .4 = -0.916 (1), </s> ln .1 (rank 2: not finished).  beams: a, b
    step 2: b </s> ln .36  = -1.021651 (rank 0): finished "b",  score -1.021651 / lp(2) = -0.931396
            a a    ln .20  = -1.609 (1), a b ln .175 = -1.743 (2), a </s> ln .125 (3: not finished).  beams: aa, ab
    step 3: aa </s> ln .18   = -1.714798 (rank 0): finished "aa", score -1.714798 / lp(3) = -1.442945
            ab </s> ln .0875 = -2.436116 (rank 1): finished "ab", score -2.436116 / lp(3) = -2.049910
            3 finished >= K = 2: done. Best: "b" (-0.931396), then "aa" (-1.442945); "ab" falls off the 2-best.
    """
    for use_cache in (True, False):
        opts = DecodeOptions(beam=2, length_penalty=0.6, use_cache=use_cache)
        (hyps,) = beam_search_nbest(TableModel(GREEDY_TRAP), ONE_SRC, opts)
        assert [letters(h.tokens) for h in hyps] == ["b", "aa"]
        assert [h.score for h in hyps] == pytest.approx([-0.931396, -1.442945], abs=1e-6)
        assert [h.log_prob for h in hyps] == pytest.approx([math.log(0.36), math.log(0.18)])
        assert [h.length for h in hyps] == [2, 3]  # </s> counts
        assert [letters(out) for out in beam_search(TableModel(GREEDY_TRAP), ONE_SRC, opts)] == ["b"]
    spy = Spy(TableModel(GREEDY_TRAP))
    beam_search(spy, ONE_SRC, DecodeOptions(beam=2))
    assert spy.rows == [2, 2, 2]  # stopped after step 3, far from the length limit (14)


def test_beam_2_max_length_finishes_beams_as_they_stand():
    """Max length 2 (a = 0, b = 2): step 2 is the last, and its top 2 continuations are finished as they are.

    step 2: b </s> ln .36 = -1.021651 (rank 0): "b", length 2 -> -1.021651 / lp(2) = -0.931396
            a a    ln .20 = -1.609438 (rank 1): "aa" cut at the limit, no </s>, length 2 -> -1.467257
    """
    opts = DecodeOptions(beam=2, max_len_a=0.0, max_len_b=2)
    (hyps,) = beam_search_nbest(TableModel(GREEDY_TRAP), ONE_SRC, opts)
    assert [(letters(h.tokens), h.length) for h in hyps] == [("b", 2), ("aa", 2)]
    assert [h.score for h in hyps] == pytest.approx([-0.931396, -1.467257], abs=1e-6)
    # Greedy at the same limit stops after "a a", with no </s> appended.
    assert greedy_search(TableModel(GREEDY_TRAP), ONE_SRC, DecodeOptions(beam=1, max_len_a=0.0, max_len_b=2)) == [
        [A, A]
    ]


# "b </s>" is short and likely (0.3); "a a a </s>" is longer and a little less likely (0.5 * .8 * .8 * .8 = .256).
LENGTH_TRADE = {
    "": {"a": 0.5, "b": 0.3, "</s>": 0.2},
    "a": {"a": 0.8, "b": 0.12, "</s>": 0.08},
    "b": {"</s>": 1.0},
    "aa": {"a": 0.8, "b": 0.12, "</s>": 0.08},
    "ab": {"a": 0.5, "b": 0.5},
    "aaa": {"</s>": 0.8, "a": 0.1, "b": 0.1},
    "aab": {"</s>": 1.0},
}


@pytest.mark.parametrize("alpha, expected", [
    # The search is the same for every α (beams are ranked by log-probability; only finished ones are penalised):
    # step 1: a -0.693 (0), b -1.204 (1), </s> (2).                                     beams: a, b
    # step 2: aa ln .4 (0), b </s> ln .3 = -1.203973 (1): finished "b", length 2; ab ln .06 (2).  beams: aa, ab
    # step 3: aaa ln .32 (0), aab ln .048 (1), aa </s> ln .032 (2: not finished).       beams: aaa, aab
    # step 4: aaa </s> ln .256 = -1.362578 (0), aab </s> ln .048 = -3.036554 (1): both finished, length 4. Done.
    # α = 0: scores are log-probs: "b" -1.203973 > "aaa" -1.362578.
    (0.0, [("b", -1.203973), ("aaa", -1.362578)]),
    # α = 1: lp(2) = 7/6, lp(4) = 9/6: "aaa" -1.362578 / 1.5 = -0.908385 > "b" -1.203973 / (7/6) = -1.031977.
    (1.0, [("aaa", -0.908385), ("b", -1.031977)]),
])
def test_length_penalty_changes_the_winner(alpha, expected):
    opts = DecodeOptions(beam=2, length_penalty=alpha)
    (hyps,) = beam_search_nbest(TableModel(LENGTH_TRADE), ONE_SRC, opts)
    assert [letters(h.tokens) for h in hyps] == [name for name, _ in expected]
    assert [h.score for h in hyps] == pytest.approx([score for _, score in expected], abs=1e-6)


# An <eos> ranked below the top K continuations of its step does not finish a hypothesis: it was never in the beam.
BELOW_THE_BEAM = {
    "": {"a": 0.6, "b": 0.4},
    "a": {"</s>": 0.6, "a": 0.4},
    "b": {"</s>": 0.55, "b": 0.45},
    "aa": {"</s>": 0.9, "a": 0.1},
    "bb": {"</s>": 1.0},
}


def test_eos_below_the_top_k_is_not_finished():
    """Beam 2, α = 0 (scores are log-probs).

    step 1: a ln .6 (rank 0), b ln .4 (1).                                                       beams: a, b
    step 2: a </s> ln .36 = -1.021651 (0): finished "a"; a a ln .24 (1);
            b </s> ln .22 = -1.514128 (rank 2: not finished); b b ln .18 (3).                   beams: aa, bb
    step 3: aa </s> ln .216 = -1.532477 (0) and bb </s> ln .18 (1): finished. 3 >= K: done.
    "b" (-1.514) would beat "aa" (-1.532) had its </s> been kept.
    """
    (hyps,) = beam_search_nbest(TableModel(BELOW_THE_BEAM), ONE_SRC, DecodeOptions(beam=2, length_penalty=0.0))
    assert [letters(h.tokens) for h in hyps] == ["a", "aa"]
    assert [h.score for h in hyps] == pytest.approx([-1.021651, -1.532477], abs=1e-6)


def test_beam_wider_than_the_continuations():
    """Beam 3 on the same table: step 1 has only 2 possible words, so the third beam starts dead (-inf).

    step 2: a </s> (rank 0) and b </s> (rank 2 < K) finish; beams aa, bb and the dead one.
    step 3: aa </s> (0) and bb </s> (1) finish: 4 >= 3, done. Best 3: "a" ln .36, "b" ln .22, "aa" ln .216.
    """
    (hyps,) = beam_search_nbest(TableModel(BELOW_THE_BEAM), ONE_SRC, DecodeOptions(beam=3, length_penalty=0.0))
    assert [letters(h.tokens) for h in hyps] == ["a", "b", "aa"]
    assert [h.score for h in hyps] == pytest.approx([math.log(0.36), math.log(0.22), math.log(0.216)])


def test_table_batch_mixes_sentences_that_finish_at_different_steps():
    """Two sentences in one batch, one cut at length 1, give what each gives alone."""
    src = torch.tensor([[5, 6, 7], [5, PAD, PAD]])  # limits: floor(1 * 3 + 0) = 3 and 1
    opts = DecodeOptions(beam=2, max_len_a=1.0, max_len_b=0)
    both = beam_search_nbest(TableModel(GREEDY_TRAP), src, opts)
    alone = [beam_search_nbest(TableModel(GREEDY_TRAP), src[i:i + 1, : 3 - 2 * i], opts)[0] for i in range(2)]
    assert both == alone
    assert [letters(hs[0].tokens) for hs in both] == ["b", "a"]  # length 1: "a" (ln .5) beats "b" (ln .4)


# ---------------------------------------------------------------- invariants of beam search on the trained model

@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.0])
def test_beam_invariants(model, src, alpha):
    """Per sentence: 1..K finished hypotheses, best first; score = log_prob / lp(length); length counts the
    <eos> unless the hypothesis was cut at the length limit; no special token in any output."""
    k = 3
    opts = DecodeOptions(beam=k, length_penalty=alpha)
    nbest = beam_search_nbest(model, src, opts)
    limits = max_output_lengths(src, opts)
    for hyps, limit in zip(nbest, limits):
        assert 1 <= len(hyps) <= k
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        for h in hyps:
            assert h.score == pytest.approx(h.log_prob / length_penalty(h.length, alpha))
            assert h.length == len(h.tokens) + 1 or len(h.tokens) == h.length == limit
            assert not {PAD, BOS, EOS} & set(h.tokens) and h.log_prob <= 0
        if alpha == 0.0:  # no penalty: the best hypothesis is the most likely one found
            assert hyps[0].log_prob == max(h.log_prob for h in hyps)
    assert beam_search(model, src, opts) == [hyps[0].tokens for hyps in nbest]


# An <eos> at the first step finishes the empty hypothesis; its <eos> counts in the length but is not output.
EOS_FIRST = {
    "": {"</s>": 0.6, "a": 0.4},
    "a": {"</s>": 0.5, "a": 0.3, "b": 0.2},
}


def test_eos_at_the_first_step_gives_an_empty_output():
    """Beam 2, α = 0.6. step 1: </s> ln .6 (rank 0): finished "", length 1, lp(1) = 1 -> -0.510826;
    a ln .4 (rank 1) goes on. step 2: a </s> ln .2 (rank 0): finished "a", length 2 -> -1.609438 / lp(2).
    Two finished: done; greedy stops at once as well."""
    opts = DecodeOptions(beam=2, length_penalty=0.6)
    (hyps,) = beam_search_nbest(TableModel(EOS_FIRST), ONE_SRC, opts)
    assert [(letters(h.tokens), h.length) for h in hyps] == [("", 1), ("a", 2)]
    assert [h.score for h in hyps] == pytest.approx([math.log(0.6), math.log(0.2) / length_penalty(2, 0.6)])
    assert beam_search(TableModel(EOS_FIRST), ONE_SRC, opts) == [[]]
    assert greedy_search(TableModel(EOS_FIRST), ONE_SRC, DecodeOptions(beam=1)) == [[]]


# ---------------------------------------------------------------- the blocked top-k against torch.topk

@pytest.mark.parametrize("rows, vocab, k", [
    (5, 8000, 1),     # greedy over the small model's vocabulary
    (12, 8000, 8),    # beam 4: 2K candidates per row
    (3, 7993, 8),     # a vocabulary that is not a multiple of the block: the tail is searched too
    (4, 100, 8),      # too few blocks: plain topk
    (2, 64 * 40, 2),  # whole blocks only
])
def test_top_k_equals_torch_topk(rows, vocab, k):
    x = torch.randn(rows, vocab, generator=torch.Generator().manual_seed(vocab))
    x[0, :17] = -math.inf  # <pad>, <bos> and friends
    values, index = top_k(x, k)
    expected = x.topk(k, dim=1)
    assert torch.equal(values, expected.values) and torch.equal(index, expected.indices)
