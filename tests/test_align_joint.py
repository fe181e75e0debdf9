"""Tests for attnlab.align.joint: tagging, English words, the pseudo-bilingual corpus, code-switching,
the sentence shuffle, and a joint space trained on a tiny bilingual world. Tiny data built in each test."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from attnlab.align import joint
from attnlab.align.space import AlignedSpace
from attnlab.errors import AttnlabError
from attnlab.word2vec.config import Word2VecConfig
from attnlab.word2vec.corpus import encode
from attnlab.word2vec.vectors import WordVectors


# ---------------------------------------------------------------- tokens

def test_split_tagged_keeps_colliding_words_apart() -> None:
    words = ["zh:ok", "en:ok", "zh:书", "en:book", "en:zh:odd"]
    vectors = WordVectors(words, np.arange(10, dtype=np.float32).reshape(5, 2), np.array([9, 8, 7, 6, 5]))
    halves = joint.split_tagged(vectors)
    assert halves["zh"].words == ["ok", "书"] and halves["en"].words == ["ok", "book", "zh:odd"]
    np.testing.assert_array_equal(halves["zh"].vectors, [[0, 1], [4, 5]])
    assert halves["en"].counts.tolist() == [8, 6, 5]
    with pytest.raises(AttnlabError, match="'fr:chat' has no language tag"):
        joint.split_tagged(WordVectors(["fr:chat"], np.zeros((1, 2), np.float32)))


@pytest.mark.parametrize("text, expected", [
    ("Let's try something.", ["let", "s", "try", "something"]),  # en_mix writes "let s"
    ("I don't know!", ["i", "don", "t", "know"]),
    ("Café at 3 o'clock", ["cafe", "at", "o", "clock"]),  # accents dropped, digits are separators
    ("  ", []),
])
def test_english_words_follow_en_mix(text: str, expected: list[str]) -> None:
    assert joint.english_words(text) == expected


def test_segment_pairs_cuts_chinese_like_zh_mono_and_drops_empty_sides() -> None:
    from attnlab.data.zh_mono import segment

    pairs = joint.segment_pairs([("我們試試看！", "Let's try something."), ("你好", "123")])
    assert pairs == [(segment("我們試試看！"), ["let", "s", "try", "something"])]
    assert "我们" in pairs[0][0]  # Traditional → Simplified, as in the monolingual corpus


# ---------------------------------------------------------------- the corpus

def test_pseudo_bilingual_shuffles_each_copy_afresh() -> None:
    pair = (["我", "爱", "猫"], ["i", "love", "cats"])
    out = list(joint.pseudo_bilingual([pair], copies=6, rng=random.Random(0)))
    merged = sorted(["zh:我", "zh:爱", "zh:猫", "en:i", "en:love", "en:cats"])
    assert len(out) == 6 and all(sorted(s) == merged for s in out)
    assert len({tuple(s) for s in out}) > 1  # not one shuffle repeated
    assert out == list(joint.pseudo_bilingual([pair], copies=6, rng=random.Random(0)))  # seeded


def test_anchor_sentences_and_translation_tables() -> None:
    pairs = [("猫", "cat"), ("猫", "kitty"), ("书", "book")]
    assert list(joint.anchor_sentences(pairs, 2)) == [["zh:猫", "en:cat"], ["zh:猫", "en:kitty"],
                                                      ["zh:书", "en:book"]] * 2
    assert joint.translations(pairs) == {"猫": ["cat", "kitty"], "书": ["book"]}
    assert joint.translations(pairs, reverse=True) == {"cat": ["猫"], "kitty": ["猫"], "book": ["书"]}


def test_code_switch_replaces_dictionary_words_at_rate_p() -> None:
    table = {"猫": ["cat", "kitty"]}
    words = ["猫", "在", "猫"]
    assert joint.code_switch(words, "zh", table, 0.0, random.Random(0)) == ["zh:猫", "zh:在", "zh:猫"]
    always = joint.code_switch(words, "zh", table, 1.0, random.Random(0))
    assert always[1] == "zh:在" and {always[0], always[2]} <= {"en:cat", "en:kitty"}
    rng = random.Random(1)
    draws = Counter(w for _ in range(4000) for w in joint.code_switch(["猫"], "zh", table, 0.25, rng))
    # 4000 draws at p = 0.25: 1000 switched (sd 27), split evenly between the two translations
    assert abs(draws["zh:猫"] - 3000) < 120 and abs(draws["en:cat"] - draws["en:kitty"]) < 150


def test_shuffle_sentences_moves_whole_sentences() -> None:
    sents = [["a", "b"], ["c"], ["d", "e", "f"], ["a", "c", "e", "g"]]
    corpus = encode(sents, min_count=1)
    shuffled = joint.shuffle_sentences(corpus, np.random.default_rng(3))

    def sentences(c):
        return [tuple(c.words[i] for i in c.ids[c.starts[s]:c.starts[s + 1]]) for s in range(len(c.starts) - 1)]

    assert sorted(sentences(shuffled)) == sorted(tuple(s) for s in sents)
    assert sentences(shuffled) != sentences(corpus)
    assert shuffled.words == corpus.words and shuffled.n_words == corpus.n_words == 10


def test_joint_config_rejects_bad_values() -> None:
    with pytest.raises(AttnlabError, match="switch must be a probability in \\[0, 1\\], got 1.5"):
        joint.JointConfig(switch=1.5)
    with pytest.raises(AttnlabError, match="pair_copies must be >= 0, got -1"):
        joint.JointConfig(pair_copies=-1)


# ---------------------------------------------------------------- a joint space on a tiny world

N_CONCEPTS = 100  # SGNS needs a vocabulary well beyond its 5 noise words: with 24 the noise hits the context


def ring_world(n_pairs: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """Sentence pairs about three neighbouring concepts on a ring: concept k is 词k in Chinese and wk
    in English, and a pair names k, k+1, k+2 in both languages (in a random order on each side)."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n_pairs):
        ks = [(rng.randrange(N_CONCEPTS) + d) % N_CONCEPTS for d in (0, 1, 2)]
        zh, en = [f"词{k}" for k in ks], [f"w{k}" for k in ks]
        rng.shuffle(zh)
        rng.shuffle(en)
        pairs.append((zh, en))
    return pairs


W2V = Word2VecConfig(arch="skipgram", dim=16, window=5, min_count=1, sample=0.0, epochs=10, seed=3)
GOLD = [(f"词{k}", f"w{k}") for k in range(N_CONCEPTS)]


def test_the_pseudo_bilingual_pairs_are_what_links_the_languages(tmp_path: Path) -> None:
    # Monolingual text of the same world in each language, from other draws: alone it gives two
    # spaces with the same shape but unrelated axes; the merged and shuffled pairs put them in one.
    mono = ring_world(2000, seed=1)
    (tmp_path / "zh.txt").write_text("".join(" ".join(zh) + "\n" for zh, _ in mono), encoding="utf-8")
    (tmp_path / "en.txt").write_text("".join(" ".join(en) + "\n" for _, en in mono), encoding="utf-8")
    inputs = joint.JointInputs(zh_mono=tmp_path / "zh.txt", en_mono=tmp_path / "en.txt",
                               parallel=ring_world(2000, seed=0))
    p_at_1 = {}
    for copies in (0, 2):
        vectors, stats = joint.train_joint(inputs, joint.JointConfig(pair_copies=copies), W2V, show_progress=False)
        assert stats.corpus_words == 2000 * 3 * 2 + copies * 2000 * 6
        space = joint.joint_space(vectors["zh"], vectors["en"], joint.JointConfig())
        np.testing.assert_array_equal(space.w, np.eye(16))
        scores = space.evaluate(GOLD + [("词999", "w999")], ks=(1, 5))
        assert (scores["zh-en"]["queries"], scores["zh-en"]["covered"]) == (N_CONCEPTS + 1, N_CONCEPTS)
        p_at_1[copies] = (scores["zh-en"]["of_all"]["csls"]["p@1"], scores["en-zh"]["of_all"]["csls"]["p@1"])
    assert max(p_at_1[0]) < 10.0  # chance is 1 %
    assert min(p_at_1[2]) >= 95.0 * N_CONCEPTS / (N_CONCEPTS + 1)  # the uncovered query is a miss


def test_build_joint_space_reads_files_and_holds_out_dev_words(tmp_path: Path) -> None:
    (tmp_path / "zh.txt").write_text("我 喜欢 猫 ok\n" * 20, encoding="utf-8")
    (tmp_path / "en.txt").write_text("i like cats ok " * 20, encoding="utf-8")
    (tmp_path / "pairs.tsv").write_text("zh_id\tzh\ten_id\ten\n" + "1\t我喜欢猫。\t2\tI like cats.\n",
                                        encoding="utf-8")
    (tmp_path / "dict.tsv").write_text("猫\tcats\n喜欢\tlike\n", encoding="utf-8")
    cfg = joint.JointConfig(pair_copies=3, anchor_copies=5)
    w2v = Word2VecConfig(arch="skipgram", dim=8, min_count=1, epochs=1)
    space = joint.build_joint_space(zh_mono=tmp_path / "zh.txt", en_mono=tmp_path / "en.txt",
                                    parallel=tmp_path / "pairs.tsv", dictionary=tmp_path / "dict.tsv",
                                    exclude={"喜欢"}, cfg=cfg, w2v=w2v, show_progress=False)
    # "ok" is a word of both corpora and stays two words; jieba keeps "。" as zh-mono does
    assert set(space.src.words) == {"我", "喜欢", "猫", "。", "ok"} and set(space.tgt.words) == {"i", "like", "cats", "ok"}
    assert space.info["inputs"]["sentence_pairs"] == 1 and space.info["inputs"]["dictionary_pairs"] == 1
    # 80 + 80 monolingual words, 3 shuffled copies of a 4 + 3-word pair, 5 copies of the one anchor left
    assert space.info["training"]["corpus_words"] == 80 + 80 + 3 * 7 + 5 * 2
    space.save(tmp_path / "space")
    again = AlignedSpace.load(tmp_path / "space")
    assert again.langs == ("zh", "en") and again.info["config"]["method"] == "joint"
    np.testing.assert_allclose(np.linalg.norm(again.src.vectors, axis=1), 1.0, atol=1e-5)


def test_build_joint_space_needs_a_corpus() -> None:
    with pytest.raises(AttnlabError, match="needs at least one corpus"):
        joint.build_joint_space(zh_mono=None, en_mono=None, parallel=None, dictionary=None,
                                cfg=joint.JointConfig(), w2v=W2V)


def test_attnlab_align_joint_writes_a_folder_align_eval_reads(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    from attnlab.cli import main

    pairs = ring_world(300, seed=0)
    letters = {f"w{k}": "w" + chr(97 + k % 26) + chr(97 + k // 26) for k in range(N_CONCEPTS)}  # w0 -> "waa"
    (tmp_path / "pairs.tsv").write_text("".join(f"{''.join(zh)}\t{' '.join(letters[w] for w in en)}\n"
                                                for zh, en in pairs), encoding="utf-8")
    (tmp_path / "zh.txt").write_text("".join(" ".join(zh) + "\n" for zh, _ in pairs), encoding="utf-8")
    (tmp_path / "test.tsv").write_text("".join(f"词{k}\t{letters[f'w{k}']}\n" for k in range(10)), encoding="utf-8")
    joint_dir = tmp_path / "joint"
    assert main(["--quiet", "align", "joint", "--zh-corpus", str(tmp_path / "zh.txt"),
                 "--parallel", str(tmp_path / "pairs.tsv"), "--out", str(joint_dir),
                 "--dim", "8", "--epochs", "1", "--min-count", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(joint_dir) and printed["inputs"]["sentence_pairs"] == 300
    space = AlignedSpace.load(joint_dir)
    assert space.src.dim == 8 and set(space.tgt.words) <= set(letters.values())
    assert main(["--quiet", "align", "eval", "--aligned", str(joint_dir), "--dict", str(tmp_path / "test.tsv")]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["zh-en"]["queries"] == 10 and scores["zh-en"]["coverage"] == 100.0


@pytest.mark.parametrize("flags, message", [
    (["--switch", "2"], "attnlab: error: --switch must be a probability in [0, 1], got 2.0"),
    (["--pair-copies", "-1"], "attnlab: error: --pair-copies must be >= 0, got -1"),
    (["--dim", "0"], "attnlab: error: --dim must be at least 1, got 0"),
    ([], "attnlab: error: a joint space needs at least one corpus (zh_mono, en_mono or parallel)"),
])
def test_attnlab_align_joint_rejects_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           flags: list[str], message: str) -> None:
    from attnlab.cli import main

    assert main(["--quiet", "align", "joint", "--out", str(tmp_path / "x"), *flags]) == 2
    assert capsys.readouterr().err == message + "\n"
    assert not (tmp_path / "x").exists()


def test_attnlab_help_does_not_import_numpy() -> None:
    # `attnlab --help` and every parse stay light: the align joint flags read plain dataclasses
    import subprocess
    import sys

    code = ("import sys; from attnlab.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'numba', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
