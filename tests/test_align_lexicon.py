"""Tests for attnlab.align.lexicon: offsets, pieces to words, the word alignment and the Dice ranking by
hand, and the whole reading through a stub model whose cross-attention is set by the test."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from attnlab.align import lexicon
from attnlab.model import DecoderOutput


def test_char_offsets_of_multibyte_text() -> None:
    # 我 and 们 take three bytes each, "a" one
    assert lexicon.char_offsets("我们a", [(0, 3), (3, 6), (6, 7), (0, 7)]) == [(0, 1), (1, 2), (2, 3), (0, 3)]


def test_word_spans_follow_the_segmenter() -> None:
    from attnlab.data.zh_mono import segment

    text = "我们试试看！"
    spans = lexicon.zh_word_spans(text)
    assert [w for w, _, _ in spans] == segment(text)
    assert all(text[s:e] == w for w, s, e in spans)
    assert lexicon.en_word_spans("Let's go, Tom!") == [("let", 0, 3), ("s", 4, 5), ("go", 6, 8), ("tom", 10, 13)]


def test_piece_to_word_takes_the_first_overlapping_word() -> None:
    words = [("ab", 0, 2), ("cd", 3, 5)]
    # pieces: "a", "b c" (overlaps both: the first wins), " " (no word), "d"
    assert lexicon.piece_to_word([(0, 1), (1, 4), (2, 3), (4, 5)], words).tolist() == [0, 0, -1, 1]


def test_word_alignment_by_hand() -> None:
    attn = np.array([[0.6, 0.3, 0.1],   # target piece 0 (word 0)
                     [0.2, 0.2, 0.6],   # target piece 1 (word 0)
                     [0.1, 0.1, 0.8],   # target piece 2 (no word: punctuation)
                     [0.0, 0.5, 0.5]])  # target piece 3 (word 1)
    tgt_word = np.array([0, 0, -1, 1])
    src_word = np.array([0, 1, 1])  # source word 1 has two pieces
    a = lexicon.word_alignment(attn, tgt_word, src_word, n_tgt=2, n_src=2)
    # word 0: mean of rows 0, 1 = [0.4, 0.25, 0.35] -> [0.4, 0.6]; word 1: [0.0, 1.0]
    np.testing.assert_allclose(a, [[0.4, 0.6], [0.0, 1.0]])


def test_dice_ranking_by_hand() -> None:
    c = lexicon.AlignmentCounts()
    c.add(np.array([[0.9, 0.1], [0.2, 0.8]]), ["猫", "喝"], ["cat", "drinks"])
    c.add(np.array([[0.7, 0.3], [0.0, 0.0]]), ["猫", "跑"], ["cat", "lost"])  # "lost" attends nowhere: no link
    c.add(np.array([[0.6, 0.4]]), ["猫", "的"], ["the"])
    assert c.links == {("猫", "cat"): 2, ("喝", "drinks"): 1, ("猫", "the"): 1}
    # Dice: 猫-cat 2·2/(3+2) = 0.8, 猫-the 2·1/(3+1) = 0.5
    assert c.ranked(5) == {"猫": ["cat", "the"], "喝": ["drinks"]}
    assert c.ranked(5, reverse=True) == {"cat": ["猫"], "drinks": ["喝"], "the": ["猫"]}


def test_backoff_fills_from_the_fallback_by_hand() -> None:
    primary = {"猫": ["cat"], "书": ["book", "the"]}
    fallback = {"猫": ["kitty", "cat", "dog"], "狗": ["dog"]}
    assert lexicon.backoff(primary, fallback, 3) == {"猫": ["cat", "kitty", "dog"], "书": ["book", "the"], "狗": ["dog"]}


# ---------------------------------------------------------------- reading a model

class CharPieces:
    """A stand-in sentencepiece processor: one piece per character (Chinese) or per word (English),
    with ids from a shared table and UTF-8 byte offsets, as `encode(..., return_type="proto")` gives."""

    def __init__(self, table: dict[str, int], by_word: bool) -> None:
        self.table, self.by_word = table, by_word

    def encode(self, texts: list[str], return_type: str) -> list[SimpleNamespace]:
        assert return_type == "proto"
        out = []
        for text in texts:
            if self.by_word:
                units = [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)]
            else:
                units = [(ch, i, i + 1) for i, ch in enumerate(text)]
            pieces = []
            for unit, s, e in units:
                b, end = len(text[:s].encode()), len(text[:e].encode())
                pieces.append(SimpleNamespace(id=self.table.setdefault(unit, len(self.table) + 4), begin=b, end=end))
            out.append(SimpleNamespace(pieces=pieces))
        return out


class StubModel:
    """Cross-attention that puts all the weight of target piece id t on the source piece with id
    `links[t]` (uniform when the source has none): a model whose alignments the test knows."""

    def __init__(self, links: dict[int, int], n_layers: int = 2) -> None:
        self.links, self.decoder = links, [None] * n_layers

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        return src

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, need_weights: bool) -> DecoderOutput:
        b, t = tgt_in.shape
        s = memory.shape[1]
        a = torch.full((b, 1, t, s), 1.0 / s)  # (B, H, T+1, S)
        for r in range(b):
            for i in range(t - 1):  # row i produces target piece tgt_in[r, i + 1]
                hit = (memory[r] == self.links.get(int(tgt_in[r, i + 1]), -1)).nonzero()
                if len(hit):
                    a[r, 0, i] = 0.0
                    a[r, 0, i, hit[0, 0]] = 1.0
        return DecoderOutput(torch.zeros(b, t, 4), None, [a] * len(self.decoder))


def test_read_alignments_recovers_the_links_the_model_attends() -> None:
    table: dict[str, int] = {}
    tokenizer = SimpleNamespace(src=CharPieces(table, by_word=False), tgt=CharPieces(table, by_word=True),
                                language_tags=False)
    zh_en = {"猫": "cat", "狗": "dog", "鱼": "fish", "吃": "eats"}
    pairs = [("猫吃鱼", "cat eats fish"), ("狗吃鱼", "dog eats fish"), ("猫", "cat"), ("狗吃", "dog eats")]
    for text in [w for p in pairs for w in p]:
        tokenizer.src.encode([text], return_type="proto")  # fill the id table
        tokenizer.tgt.encode([text], return_type="proto")
    model = StubModel({table[en]: table[zh] for zh, en in zh_en.items()})
    counts = lexicon.read_alignments(model, tokenizer, pairs, layers=(0, lexicon.ALL_LAYERS), batch_size=3)
    for layer in (0, lexicon.ALL_LAYERS):
        assert counts[layer].links == {("猫", "cat"): 2, ("吃", "eats"): 3, ("鱼", "fish"): 2, ("狗", "dog"): 2}
        scores = lexicon.evaluate(counts[layer], list(zh_en.items()) + [("马", "horse")], ks=(1,))
        assert scores["zh-en"]["dice"] == {"p@1": 100.0} and scores["zh-en"]["covered"] == 4
        assert scores["zh-en"]["of_all"]["dice"] == {"p@1": 80.0}
        assert scores["en-zh"]["of_all"]["dice"] == {"p@1": 80.0}
    # backed off to a space that knows only 马: every query right, under the name "dice+csls"
    space = SimpleNamespace(ranked=lambda words, reverse, method, n: {"horse": ["马"]} if reverse else {"马": ["horse"]})
    both = lexicon.evaluate(counts[0], list(zh_en.items()) + [("马", "horse")], ks=(1,), space=space)
    assert both["zh-en"]["of_all"]["dice+csls"] == both["en-zh"]["of_all"]["dice+csls"] == {"p@1": 100.0}
    with pytest.raises(ValueError, match="decoder layer 5 out of range"):
        lexicon.read_alignments(model, tokenizer, pairs, layers=(5,))


def test_attnlab_align_lexicon_on_a_trained_run(tiny_run, tmp_path, capsys) -> None:
    import json

    from attnlab.cli import main

    train = str(tiny_run.parent / "train.tsv")
    (tmp_path / "test.tsv").write_text("三\tthree\n五\tfive\n", encoding="utf-8")
    lexicon_args = ["--quiet", "align", "lexicon", "--model", str(tiny_run), "--parallel", train,
                    "--dict", str(tmp_path / "test.tsv")]
    assert main(lexicon_args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["layer"] == -1 and out["backoff"] is None
    assert out["zh-en"]["queries"] == 2 and set(out["zh-en"]["of_all"]["dice"]) == {"p@1", "p@5", "p@10"}
    # backed off to a joint space of the same pairs: scored under "dice+csls", every query covered
    assert main(["--quiet", "align", "joint", "--parallel", train, "--out", str(tmp_path / "joint"), "--dim", "8",
                 "--epochs", "1", "--min-count", "1", "--pair-copies", "2"]) == 0
    capsys.readouterr()
    assert main(lexicon_args + ["--backoff", str(tmp_path / "joint")]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["backoff"] == str(tmp_path / "joint") and both["zh-en"]["coverage"] == 100.0
    assert set(both["en-zh"]["of_all"]) == {"dice+csls"}
    assert main(lexicon_args + ["--layer", "3"]) == 2
    assert capsys.readouterr().err == ("attnlab: error: --layer: decoder layer 3 out of range: the model has 1 "
                                       "(or -1 for all)\n")
    assert main(lexicon_args + ["--backoff", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("attnlab: error: ")
