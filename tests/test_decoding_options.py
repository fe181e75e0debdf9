"""Tests for the options around the searches (attnlab.decoding) and for word alignments read from attention
(attnlab.translate.alignment): n-best lists, scores against a teacher-forced pass, target prefixes, sampling,
length control, and links on hand-made attention matrices.

The model is test_decoding's tiny copy-task Seq2SeqTransformer, half-trained so that outputs end at various
lengths.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnlab.config import DecodeConfig
from attnlab.decoding import (
    DecodeOptions,
    _ban_repeats,
    _constrain,
    beam_search,
    force_decode,
    greedy_search,
    length_penalty,
    search_hypotheses,
)
from attnlab.errors import AttnlabError
from attnlab.translate import alignment
from test_decoding import PAD, model, one_thread, random_src  # noqa: F401 (fixtures)


def rows(src: torch.Tensor) -> list[list[int]]:
    return [[t for t in row if t != PAD] for row in src.tolist()]


# ---------------------------------------------------------------- n-best and scores

@pytest.mark.parametrize("beam", [2, 4])
def test_nbest_is_ordered_by_score_and_its_first_is_beam_searchs_output(model, beam):
    src = random_src(12, seed=1)
    opts = DecodeOptions(beam=beam, n_best=beam)
    nbest = search_hypotheses(model, src, opts)
    assert [h[0].tokens for h in nbest] == beam_search(model, src, DecodeOptions(beam=beam))
    for hyps in nbest:
        assert 1 <= len(hyps) <= beam
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == len(hyps)  # n distinct hypotheses
    assert any(len(h) == beam for h in nbest)


@pytest.mark.parametrize("beam", [1, 3])
def test_scores_equal_a_teacher_forced_forward_pass(model, beam):
    """log_prob of each hypothesis = the sum of log_softmax(model(src, <bos> y)) over y <eos>, with the
    model's plain forward (no cache); score = log_prob / lp(length)."""
    src = random_src(10, seed=2)
    opts = DecodeOptions(beam=beam, n_best=beam)
    for s, hyps in zip(rows(src), search_hypotheses(model, src, opts)):
        for h in hyps:
            tgt_in = torch.tensor([[opts.bos_id, *h.tokens]])
            with torch.no_grad():
                log_probs = model(torch.tensor([s]), tgt_in)[0].log_softmax(dim=1)  # (T+1,V)
            wanted = [*h.tokens, opts.eos_id]
            per_token = [log_probs[t, y].item() for t, y in enumerate(wanted)][: h.length]
            assert h.log_prob == pytest.approx(sum(per_token), abs=1e-4)
            assert h.score == pytest.approx(h.log_prob / length_penalty(h.length, opts.length_penalty), abs=1e-6)


def test_force_decode_scores_each_token_of_padded_targets(model):
    src = random_src(6, seed=3)
    targets = [[5, 6, 7], [], [9], [4, 4, 4, 4, 4], [8, 9], [10]]
    forced = force_decode(model, src, targets, need_weights=True)
    for s, t, scores, cross in zip(rows(src), targets, forced.token_log_probs, forced.cross):
        alone = force_decode(model, torch.tensor([s]), [t]).token_log_probs[0]  # no padding anywhere
        assert len(scores) == len(t) + 1 and scores == pytest.approx(alone, abs=1e-5)
        assert cross.shape == (2, 4, len(t) + 1, len(s))  # (L,H,T+1,S)
        assert torch.allclose(cross.sum(dim=-1), torch.ones(2, 4, len(t) + 1), atol=1e-5)


# ---------------------------------------------------------------- target prefixes

def test_prefix_of_greedys_own_output_gives_the_same_output(model):
    src = random_src(12, seed=4)
    opts = DecodeOptions(beam=1)
    outputs = greedy_search(model, src, opts)
    for cut in (1, 2, 3):
        assert greedy_search(model, src, opts, [out[:cut] for out in outputs]) == outputs


def test_prefix_of_beams_own_output_gives_the_same_output_or_a_better_one(model):
    """Beam search forced through the start of its own best output keeps all K beams on that start, where
    the free search also kept other starts (and counted their early <eos>s towards its K finished
    hypotheses). So it returns the same output, or one that scores higher under the same objective."""
    src = random_src(24, seed=4)
    opts = DecodeOptions(beam=4)
    best = [h[0] for h in search_hypotheses(model, src, opts)]
    same = 0
    for cut in (1, 2, 3):
        again = [h[0] for h in search_hypotheses(model, src, opts, [b.tokens[:cut] for b in best])]
        for b, a in zip(best, again):
            assert a.tokens[: min(cut, len(b.tokens))] == b.tokens[:cut]
            same += a.tokens == b.tokens
            assert a.tokens == b.tokens or a.score >= b.score - 1e-6
    assert same >= 0.8 * 3 * len(best)


@pytest.mark.parametrize("opts", [DecodeOptions(beam=1), DecodeOptions(beam=3, n_best=3),
                                  DecodeOptions(sample="topk", n_best=2, seed=5)])
def test_every_output_starts_with_its_prefix(model, opts):
    src = random_src(8, seed=5)
    prefixes = [[7, 7, 9], [], [12], list(range(5, 21)), [30], [], [4], [39, 38]]  # 16 tokens: past the limit
    for prefix, hyps in zip(prefixes, search_hypotheses(model, src, opts, prefixes)):
        assert hyps and all(h.tokens[: len(prefix)] == prefix for h in hyps)


# ---------------------------------------------------------------- sampling

def test_sampling_is_reproducible_by_seed(model):
    src = random_src(10, seed=6)
    draw = lambda **kw: [[h.tokens for h in hyps] for hyps in search_hypotheses(model, src, DecodeOptions(**kw))]
    for kind in ("topk", "topp"):
        first = draw(sample=kind, n_best=3, seed=11, temperature=1.5)
        assert draw(sample=kind, n_best=3, seed=11, temperature=1.5) == first
        assert draw(sample=kind, n_best=3, seed=12, temperature=1.5) != first


def test_sampling_with_one_candidate_is_greedy(model):
    src = random_src(10, seed=7)
    greedy = greedy_search(model, src, DecodeOptions(beam=1))
    for opts in (DecodeOptions(sample="topk", top_k=1, seed=3), DecodeOptions(sample="topp", top_p=1e-6, seed=3)):
        assert [h[0].tokens for h in search_hypotheses(model, src, opts)] == greedy


def test_sampled_scores_are_the_models_log_probabilities(model):
    src = random_src(4, seed=8)
    opts = DecodeOptions(sample="topp", top_p=0.9, temperature=2.0, n_best=2, seed=1)
    for s, hyps in zip(rows(src), search_hypotheses(model, src, opts)):
        forced = force_decode(model, torch.tensor([s] * len(hyps)), [h.tokens for h in hyps]).token_log_probs
        assert [h.log_prob for h in hyps] == pytest.approx([sum(f[: h.length]) for f, h in zip(forced, hyps)], abs=1e-4)


# ---------------------------------------------------------------- length control

@pytest.mark.parametrize("beam", [1, 3])
def test_min_and_max_decoding_length(model, beam):
    src = random_src(10, seed=9)
    short = search_hypotheses(model, src, DecodeOptions(beam=beam, max_decoding_length=2))
    assert all(len(h[0].tokens) <= 2 for h in short)
    long = search_hypotheses(model, src, DecodeOptions(beam=beam, min_decoding_length=12, max_len_b=20))
    assert all(len(h[0].tokens) >= 12 for h in long)


@pytest.mark.parametrize("beam, n", [(1, 1), (1, 2), (3, 2), (2, 3)])
def test_no_repeat_ngram_size(model, beam, n):
    src = random_src(10, seed=10).clamp(max=6).masked_fill(random_src(10, seed=10) == PAD, PAD)  # repetitive
    for hyps in search_hypotheses(model, src, DecodeOptions(beam=beam, no_repeat_ngram_size=n, max_len_b=12)):
        grams = [tuple(hyps[0].tokens[i:i + n]) for i in range(len(hyps[0].tokens) - n + 1)]
        assert len(grams) == len(set(grams))


def test_ban_repeats_by_hand():
    log_probs = torch.zeros(2, 6)
    history = torch.tensor([[4, 5, 4, 3, 4], [1, 2, 3, 4, 5]])  # row 0 ends with 4: (4, 5) and (4, 3) are seen
    _ban_repeats(log_probs, history, 2)
    assert log_probs[0].tolist() == [0, 0, 0, -math.inf, 0, -math.inf] and log_probs[1].tolist() == [0] * 6


def test_repetition_penalty_and_forced_tokens_by_hand():
    """CTRL's penalty: a seen token's positive logit is divided by the penalty, a negative one multiplied."""
    logits = torch.tensor([[0.0, 0.0, 0.0, 2.0, -1.0, 1.0]])
    opts = DecodeOptions(repetition_penalty=2.0)
    out = _constrain(logits.clone(), opts, 2, lambda: torch.tensor([[3, 4]]), None)
    assert torch.allclose(out, torch.tensor([[0.0, 0.0, 0.0, 1.0, -2.0, 1.0]]).log_softmax(dim=1))
    forced = _constrain(logits.clone(), DecodeOptions(), 0, lambda: torch.zeros(1, 0, dtype=torch.long),
                        torch.tensor([5]))
    assert forced[0, 5] == logits.log_softmax(dim=1)[0, 5] and torch.isinf(forced[0, :5]).all()


@pytest.mark.parametrize("values, field", [
    ({"n_best": 5, "beam": 4}, "n_best"), ({"n_best": 0}, "n_best"), ({"sample": "nucleus"}, "sample"),
    ({"top_p": 0.0}, "top_p"), ({"top_k": 0}, "top_k"), ({"temperature": 0.0}, "temperature"),
    ({"min_decoding_length": -1}, "min_decoding_length"), ({"repetition_penalty": 0.0}, "repetition_penalty"),
    ({"no_repeat_ngram_size": -2}, "no_repeat_ngram_size"), ({"max_decoding_length": -1}, "max_decoding_length"),
])
def test_bad_options_name_their_field(values, field):
    with pytest.raises(AttnlabError) as e:
        DecodeConfig(**values)
    assert e.value.field == f"decode.{field}"


def test_sampling_may_return_more_draws_than_the_beam():
    assert DecodeConfig(beam=1, n_best=4, sample="topk").n_best == 4


# ---------------------------------------------------------------- alignments

@pytest.mark.parametrize("pieces, words, of_piece", [
    (["▁I", "▁li", "ke", "▁the", "▁library", "."], ["I", "like", "the", "library."], [0, 1, 1, 2, 3, 3]),
    (["▁我", "喜欢", "图书馆", "。"], ["我", "喜欢", "图书馆", "。"], [0, 1, 2, 3]),
    (["▁", "图书馆", "<unk>", "▁ok"], ["图书馆", "<unk>", "ok"], [0, 0, 1, 2]),
    ([], [], []),
])
def test_piece_words(pieces, words, of_piece):
    got = alignment.piece_words(pieces)
    assert got.text == words and got.of_piece.tolist() == of_piece


def test_links_from_a_hand_made_attention_matrix():
    """Source 我 | 喜欢 | 图书馆 (pieces ▁我 喜 欢 图书馆), target I | like | the | library (5 pieces, <eos>).
    A target word's row is the mean over its pieces; a source word's column the sum over its pieces."""
    src = alignment.piece_words(["▁我", "喜", "欢", "图书馆"])  # CJK pieces stand alone
    assert src.text == ["我", "喜", "欢", "图书馆"]
    src = alignment.Words(["我", "喜欢", "图书馆"], np.array([0, 1, 1, 2]))  # a two-piece word, by hand
    tgt = alignment.piece_words(["▁I", "▁like", "▁the", "▁lib", "rary"])
    attn = np.array([  # (T+1, S): rows I, like, the, lib, rary, <eos>
        [0.9, 0.05, 0.05, 0.0],
        [0.1, 0.3, 0.3, 0.3],   # like: 喜 + 欢 = 0.6 beats 图书馆 0.3
        [0.4, 0.0, 0.0, 0.6],   # the: 图书馆
        [0.0, 0.5, 0.0, 0.5],   # library: mean of lib (喜欢 0.5, 图书馆 0.5) ...
        [0.0, 0.0, 0.1, 0.9],   # ... and rary (0.1, 0.9): 喜欢 0.3, 图书馆 0.7
        [1.0, 0.0, 0.0, 0.0],   # <eos>: ignored
    ])
    a_word = alignment.word_attention(attn, src, tgt)
    assert np.allclose(a_word, [[0.9, 0.1, 0.0], [0.1, 0.6, 0.3], [0.4, 0.0, 0.6], [0.0, 0.3, 0.7]])
    assert alignment.links(a_word) == [(0, 0), (1, 1), (2, 2), (2, 3)]
    assert alignment.pharaoh(alignment.links(a_word)) == "0-0 1-1 2-2 2-3"


@pytest.mark.parametrize("text, words, spaced, expected", [
    ("I like \u2047 .", ["图书馆"], True, "I like 图书馆 ."),
    (" \u2047  one two \u2047 ", ["三", "四"], True, "三 one two 四"),
    ("我喜欢 \u2047 。", ["library"], False, "我喜欢library。"),
    ("no unknowns", [], True, "no unknowns"),
])
def test_fill_unknowns(text, words, spaced, expected):
    assert alignment.fill_unknowns(text, words, spaced) == expected


def test_layer_attention_and_unknown_words():
    cross = torch.zeros(2, 2, 3, 2)  # (L,H,T,S)
    cross[0, :, :, 0] = 1.0
    cross[1, 0, :, 1] = 1.0
    cross[1, 1, :, 0] = 1.0
    assert np.allclose(alignment.layer_attention(cross, 0), [[1, 0]] * 3)
    assert np.allclose(alignment.layer_attention(cross, -1), [[0.5, 0.5]] * 3)
    assert np.allclose(alignment.layer_attention(cross), [[0.75, 0.25]] * 3)
    with pytest.raises(IndexError):
        alignment.layer_attention(cross, 2)
    src = alignment.Words(["我", "喜欢", "图书馆"], np.array([0, 1, 2]))
    a_word = np.array([[0.1, 0.8, 0.1], [0.2, 0.1, 0.7], [0.6, 0.2, 0.2]])  # (E,Z) for I <unk> <unk>
    assert alignment.unknown_words(["▁I", "<unk>", "<unk>"], src, a_word) == ["图书馆", "我"]
