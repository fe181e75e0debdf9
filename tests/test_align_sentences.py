"""Tests for attnlab.align.sentences: pooling and retrieval P@k by hand, the encoder read through a stub
model, and `attnlab align sentences` on the tiny trained run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from attnlab.align import sentences
from attnlab.cli import main
from attnlab.errors import AttnlabError
from attnlab.model import Memory


def test_pool_states_by_hand() -> None:
    states = torch.tensor([[[1.0, 4.0], [3.0, 0.0], [9.0, 9.0]],   # the third position is padding
                           [[2.0, -1.0], [0.0, 0.0], [0.0, 0.0]]])  # (B=2, S=3, D=2)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    torch.testing.assert_close(sentences.pool_states(states, mask, "mean"), torch.tensor([[2.0, 2.0], [2.0, -1.0]]))
    torch.testing.assert_close(sentences.pool_states(states, mask, "max"), torch.tensor([[3.0, 4.0], [2.0, -1.0]]))
    with pytest.raises(AttnlabError, match="unknown pooling 'sum'"):
        sentences.pool_states(states, mask, "sum")


class StubEncoder:
    """An encoder whose state at each piece is (piece id, 1): a sentence's mean is (mean id, 1)."""

    cfg = SimpleNamespace(d_model=2)

    def encode(self, src: torch.Tensor) -> Memory:
        states = torch.stack([src.float(), torch.ones_like(src, dtype=torch.float)], dim=-1)  # (B, S, 2)
        return Memory(states, (src != 0)[:, None, None, :])


def test_sentence_vectors_keep_the_order_given_across_batches() -> None:
    tokenizer = SimpleNamespace(encode_src=lambda texts: [[int(c) for c in t] for t in texts])  # "46" -> [4, 6]
    texts = ["4682", "5", "13", "777", "9"]
    vectors = sentences.sentence_vectors(StubEncoder(), tokenizer, texts, "mean", batch_size=2)
    np.testing.assert_allclose(vectors, [[5, 1], [5, 1], [2, 1], [7, 1], [9, 1]])
    with pytest.raises(AttnlabError, match="batch_size must be at least 1"):
        sentences.sentence_vectors(StubEncoder(), tokenizer, texts, batch_size=0)


def test_retrieval_scores_by_hand() -> None:
    # a = e1, b = e2, c = unit(e1 + e3/2); A = e1, B = e2, C = e3. c's nearest English sentence is A
    # (cos 0.894 against 0.447 for C), a miss; every other query finds its translation, both ways.
    c = np.array([1.0, 0.0, 0.5]) / np.linalg.norm([1.0, 0.0, 0.5])
    zh, en = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], c]), np.eye(3)
    pairs = [("a", "A"), ("b", "B"), ("c", "C")]
    # CSLS with k = 1: CSLS(c, A) = 2(0.894) - 0.894 - 1 = -0.106 > CSLS(c, C) = 2(0.447) - 0.894 - 0.447 = -0.447
    scores = sentences.retrieval_scores(zh, en, ["a", "b", "c"], ["A", "B", "C"], pairs, center=False, ks=(1, 2),
                                        csls_k=1)
    for method in ("cosine", "csls"):
        assert scores["zh-en"][method] == {"p@1": 66.67, "p@2": 100.0}
        assert scores["en-zh"][method] == {"p@1": 100.0, "p@2": 100.0}
    assert scores["zh-en"]["queries"] == 3 and scores["en-zh"]["candidates"] == 3


def test_a_sentence_with_two_translations_is_right_with_either() -> None:
    # x has two translations, X1 = (0.6, -0.8) and X2 = (1, 0); its nearest is X2: right. y's nearest
    # is Y: right. Each English sentence's nearest Chinese one is its own translation too.
    zh, en = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.6, -0.8], [1.0, 0.0], [0.0, 1.0]])
    pairs = [("x", "X1"), ("x", "X2"), ("y", "Y")]
    scores = sentences.retrieval_scores(zh, en, ["x", "y"], ["X1", "X2", "Y"], pairs, center=False, ks=(1,))
    assert scores["zh-en"]["cosine"] == {"p@1": 100.0} and scores["en-zh"]["cosine"] == {"p@1": 100.0}
    # pairs re-drawn: y -> X1 and x -> Y. y (nearest Y) misses; X1 (nearest x) and Y (nearest y) miss
    wrong = sentences.retrieval_scores(zh, en, ["x", "y"], ["X1", "X2", "Y"], [("x", "X2"), ("y", "X1"), ("x", "Y")],
                                       center=False, ks=(1,))
    assert wrong["zh-en"]["cosine"] == {"p@1": 50.0} and wrong["en-zh"]["cosine"] == {"p@1": 33.33}


def test_short_pairs_takes_each_sentence_once_in_order() -> None:
    pairs = [("你好", "Hello."), ("你好", "Hi."), ("这是一个很长很长的句子。", "Long."),
             ("谢谢", "Hello."), ("再见", "Goodbye."), ("对", "Yes.")]
    assert sentences.short_pairs(pairs, 2) == [("你好", "Hello."), ("再见", "Goodbye.")]
    # "Hi." is short but 你好 is taken; 谢谢's "Hello." is taken; "Goodbye." is over 6 characters
    assert sentences.short_pairs(pairs, 9, max_en=6) == [("你好", "Hello."), ("对", "Yes.")]


def test_attnlab_align_sentences_on_a_trained_run(tiny_run, tmp_path, capsys: pytest.CaptureFixture) -> None:
    out_png = tmp_path / "sentences.png"
    assert main(["--quiet", "align", "sentences", "--model", str(tiny_run), "--limit", "40", "--pool", "max",
                 "--map", str(out_png), "--map-pairs", "6"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["direction"] == "zh-en" and out["pool"] == "max" and out["center"] is True
    assert out["map"] == {"out": str(out_png), "pairs": 6} and out_png.read_bytes().startswith(b"\x89PNG")
    for name in ("zh-en", "en-zh"):
        assert 2 <= out[name]["queries"] <= 40
        for method in ("cosine", "csls"):
            assert set(out[name][method]) == {"p@1", "p@5", "p@10"}
            assert 0.0 <= out[name][method]["p@1"] <= out[name][method]["p@10"] <= 100.0


@pytest.mark.parametrize("flags, message", [
    (["--limit", "-1"], "attnlab: error: --limit must be >= 0, got -1"),
    (["--batch-size", "0"], "attnlab: error: --batch-size must be at least 1, got 0"),
    (["--map-pairs", "1"], "attnlab: error: --map-pairs must be at least 2, got 1"),
    (["--via", "translation", "--rerank", "-1"], "attnlab: error: --rerank must be >= 0, got -1"),
    (["--via", "translation", "--beam", "0"], "attnlab: error: --beam must be at least 1, got 0"),
    (["--limit", "1"], "attnlab: error: sentence retrieval needs at least 2 distinct sentences a side, "
                       "got 1 Chinese and 1 English"),
])
def test_attnlab_align_sentences_rejects_bad_input_in_one_line(tiny_run, capsys: pytest.CaptureFixture,
                                                               flags: list[str], message: str) -> None:
    assert main(["--quiet", "align", "sentences", "--model", str(tiny_run), *flags]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_retrieval_on_sparse_rows_equals_dense() -> None:
    from scipy import sparse

    from attnlab.align import retrieval

    rng = np.random.default_rng(0)
    x = rng.random((7, 5)) * (rng.random((7, 5)) < 0.5)  # (7, 5) rows with zeros
    y = rng.random((9, 5)) * (rng.random((9, 5)) < 0.5)
    x, y = (m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12) for m in (x, y))
    zh, en = list("abcdefg"), list("ABCDEFGHI")
    pairs = [*zip(zh, en), ("a", "H"), ("g", "I")]  # every sentence has a translation
    dense = sentences.score_unit(x, y, zh, en, pairs, ks=(1, 3), csls_k=2)
    sp = sentences.score_unit(sparse.csr_matrix(x), sparse.csr_matrix(y), zh, en, pairs, ks=(1, 3), csls_k=2)
    assert sp == dense
    np.testing.assert_allclose(retrieval.mean_topk_cosine(sparse.csr_matrix(x), sparse.csr_matrix(y), 3),
                               retrieval.mean_topk_cosine(x, y, 3), rtol=1e-6)


class StubTranslator:
    """Translates by a dictionary; its config says which way."""

    def __init__(self, direction: str, table: dict[str, str]) -> None:
        src, tgt = direction.split("-")
        self.cfg = SimpleNamespace(src_lang=src, tgt_lang=tgt, direction=direction, decode=SimpleNamespace(beam=4))
        self.table, self.asked = table, []
        self.true: set[tuple[str, str]] = set()  # the pairs `score` knows as translations
        self.generic: set[str] = set()  # targets it finds likely from any source
        self.scored: list[list[tuple[str, str]]] = []  # the pairs of each `score` call

    def translate(self, lines, beam=None):
        self.asked.append(list(lines))
        return [self.table[line] for line in lines]

    def score(self, pairs):
        """A model that knows the true pairs: log-probability -1 per token for them, -5 for any other, and
        -0.5 for a generic target whatever the source."""
        from attnlab.translate.base import Scored

        self.scored.append(list(pairs))
        per_token = lambda s, t: -0.5 if t in self.generic else -1.0 if (s, t) in self.true else -5.0
        return [Scored(len(t.split()) * per_token(s, t), t.split(), []) for s, t in pairs]


def test_translation_retrieval_compares_in_the_target_language() -> None:
    from attnlab.align.bytranslation import translation_scores

    pairs = [("我喜欢猫。", "I like cats."), ("他在跑步。", "He is running."), ("今天很冷。", "It is cold today."),
             ("你好。", "Hello.")]
    # three good translations and one that reads like another sentence's: 你好。 -> "He is running today."
    zh_en = StubTranslator("zh-en", {"我喜欢猫。": "I like a cat.", "他在跑步。": "He runs.",
                                     "今天很冷。": "Today it is cold.", "你好。": "He is running today."})
    out = translation_scores(zh_en, pairs, ks=(1, 4))
    assert zh_en.asked == [[zh for zh, _ in pairs]] and out["compared_in"] == "en"
    assert out["zh-en"]["cosine"] == {"p@1": 75.0, "p@4": 100.0}  # 你好。 finds "He is running." first
    assert out["zh-en"]["queries"] == 4 and out["en-zh"]["candidates"] == 4
    # the other way round, an en->zh model translates the English side and compares Chinese characters
    en_zh = StubTranslator("en-zh", {en: zh for zh, en in pairs})
    out = translation_scores(en_zh, pairs, ks=(1,))
    assert en_zh.asked == [[en for _, en in pairs]] and out["compared_in"] == "zh"
    for name in ("zh-en", "en-zh"):
        assert out[name]["cosine"] == {"p@1": 100.0} and out[name]["csls"] == {"p@1": 100.0}


def test_attnlab_align_sentences_via_translation(tiny_run, capsys: pytest.CaptureFixture) -> None:
    assert main(["--quiet", "align", "sentences", "--model", str(tiny_run), "--limit", "30", "--via", "translation",
                 "--beam", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["via"] == "translation" and out["beam"] == 1 and out["compared_in"] == "en"
    for name in ("zh-en", "en-zh"):
        assert 2 <= out[name]["queries"] <= 30
        assert 0.0 <= out[name]["csls"]["p@1"] <= out[name]["csls"]["p@10"] <= 100.0
    assert main(["--quiet", "align", "sentences", "--model", str(tiny_run), "--via", "translation",
                 "--map", "x.png"]) == 2
    assert capsys.readouterr().err == "attnlab: error: --map draws pooled encoder vectors: not with --via translation\n"


def test_reranking_by_the_model_puts_the_pair_it_scores_highest_first() -> None:
    from attnlab.align.bytranslation import translation_scores

    pairs = [("我喜欢猫。", "I like cats."), ("他在跑步。", "He is running."), ("今天很冷。", "It is cold today."),
             ("你好。", "Hello.")]
    zh_en = StubTranslator("zh-en", {"我喜欢猫。": "I like a cat.", "他在跑步。": "He runs.",
                                     "今天很冷。": "Today it is cold.", "你好。": "He is running today."})
    zh_en.true = set(pairs)
    out = translation_scores(zh_en, pairs, rerank=4, ks=(1, 4))
    assert out["zh-en"]["csls"]["p@1"] < 100.0  # 你好。's translation matches "He is running." best
    assert out["zh-en"]["csls+model"] == {"p@1": 100.0, "p@4": 100.0} and out["rerank"] == 4
    assert out["en-zh"]["csls+model"] == {"p@1": 100.0, "p@4": 100.0}
    assert out["zh-en"]["csls+posterior"] == out["en-zh"]["csls+posterior"] == {"p@1": 100.0, "p@4": 100.0}
    assert len(zh_en.scored[-1]) == len(set(zh_en.scored[-1])) == 16  # each (zh, en) pair scored once, both ways
    # a target the model finds likely from any source wins per token, not by the posterior over its sources
    zh_en.generic = {"It is cold today."}
    out = translation_scores(zh_en, pairs, rerank=4, ks=(1,))
    assert out["zh-en"]["csls+model"] == {"p@1": 25.0}  # every query but 今天很冷。 picks the generic sentence
    assert out["zh-en"]["csls+posterior"] == {"p@1": 100.0}
    assert out["en-zh"]["csls+model"] == out["en-zh"]["csls+posterior"]  # a fixed target: the same order
    zh_en.true, zh_en.generic = set(), set()  # a model that prefers nothing keeps the CSLS order (a stable sort)
    out = translation_scores(zh_en, pairs, rerank=4, ks=(1, 4))
    assert out["zh-en"]["csls+model"] == out["zh-en"]["csls+posterior"] == out["zh-en"]["csls"]
    with pytest.raises(AttnlabError, match="rerank must be >= 0"):
        translation_scores(zh_en, pairs, rerank=-1)
