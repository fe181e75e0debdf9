"""Tests for attnlab.align (Procrustes, CSLS, dictionaries, the aligned folder and its CLI), the
cedict recipe's gloss reduction and split, and the bilingual map. Tiny vectors built in each test."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from attnlab.align import procrustes, retrieval
from attnlab.align.dictionary import match, read_pairs
from attnlab.align.space import AlignedSpace, align_vectors, precision_at_k
from attnlab.cli import main
from attnlab.data import cedict
from attnlab.errors import AttnlabError
from attnlab.word2vec.vectors import WordVectors

ROOT = Path(__file__).resolve().parents[1]


def random_rotation(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return (q * np.sign(np.diag(r))).astype(np.float32)  # (d, d), orthogonal


# ---------------------------------------------------------------- Procrustes

def test_procrustes_recovers_a_known_rotation() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 20)).astype(np.float32)  # (p, D)
    q = random_rotation(20, 1)
    w = procrustes.procrustes(x, x @ q)
    np.testing.assert_allclose(w, q, atol=1e-5)
    np.testing.assert_allclose(w @ w.T, np.eye(20), atol=1e-5)


def test_normalisation_commutes_with_a_rotation() -> None:
    # unit(xQ) = unit(x)Q and mean(unit(x)Q) = mean(unit(x))Q, so normalised y = normalised x @ Q
    rng = np.random.default_rng(2)
    x = rng.standard_normal((50, 8)).astype(np.float32) + 1.0
    q = random_rotation(8, 3)
    xn, mean = procrustes.normalize_embeddings(x)
    yn, _ = procrustes.normalize_embeddings(x @ q)
    np.testing.assert_allclose(np.linalg.norm(xn, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(yn, xn @ q, atol=1e-5)
    assert mean.shape == (8,)


def test_procrustes_rejects_mismatched_rows() -> None:
    with pytest.raises(AttnlabError, match=r"\(3, 4\) and \(3, 5\)"):
        procrustes.procrustes(np.zeros((3, 4)), np.zeros((3, 5)))


def test_refinement_keeps_an_exact_rotation() -> None:
    rng = np.random.default_rng(4)
    src, _ = procrustes.normalize_embeddings(rng.standard_normal((300, 16)))
    q = random_rotation(16, 5)
    tgt = src @ q
    seed = np.stack([np.arange(20), np.arange(20)], axis=1)  # 20 seed pairs of 300 words
    result = procrustes.fit(src, tgt, seed, procrustes.AlignConfig(refine=2, refine_vocab=300))
    np.testing.assert_allclose(result.w, q, atol=1e-4)
    assert [r["round"] for r in result.rounds] == [0, 1, 2]
    assert result.rounds[-1]["induced"] == 300  # every word is its translation's mutual CSLS neighbour


# ---------------------------------------------------------------- CSLS

# Hand-worked (k = 2). Sources s0 = (1, 0), s1 = (0.96, 0.28), s2 = (0.6, 0.8);
# targets h = (0.8, 0.6) (a hub, near every source) and t = (0, 1).
#   cos:       h      t
#     s0     0.8    0
#     s1     0.936  0.28
#     s2     0.96   0.8
#   r_T(s) = mean of the 2 best cosines over the 2 targets: s0 0.4, s1 0.608, s2 0.88
#   r_S(h) = (0.96 + 0.936) / 2 = 0.948;  r_S(t) = (0.8 + 0.28) / 2 = 0.54
#   CSLS(s2, h) = 2·0.96 - 0.88 - 0.948 = 0.092;  CSLS(s2, t) = 2·0.8 - 0.88 - 0.54 = 0.18
# Cosine picks the hub h for s2; CSLS picks t.
S = np.array([[1, 0], [0.96, 0.28], [0.6, 0.8]], dtype=np.float32)
T = np.array([[0.8, 0.6], [0, 1]], dtype=np.float32)


def test_csls_penalties_by_hand() -> None:
    r_src, r_tgt = retrieval.csls_penalties(S, T, k=2)
    np.testing.assert_allclose(r_src, [0.4, 0.608, 0.88], atol=1e-6)
    np.testing.assert_allclose(r_tgt, [0.948, 0.54], atol=1e-6)


def test_csls_overrules_the_hub_by_hand() -> None:
    r_src, r_tgt = retrieval.csls_penalties(S, T, k=2)
    idx, val = retrieval.search(S[2:], T, 2)
    assert idx.tolist() == [[0, 1]]
    np.testing.assert_allclose(val, [[0.96, 0.8]], atol=1e-6)
    idx, val = retrieval.search(S[2:], T, 2, query_penalty=r_src[2:], target_penalty=r_tgt)
    assert idx.tolist() == [[1, 0]]
    np.testing.assert_allclose(val, [[0.18, 0.092]], atol=1e-6)


def test_search_in_batches_matches_one_batch() -> None:
    rng = np.random.default_rng(6)
    a, _ = procrustes.normalize_embeddings(rng.standard_normal((37, 6)))
    b, _ = procrustes.normalize_embeddings(rng.standard_normal((23, 6)))
    r_a, r_b = retrieval.csls_penalties(a, b, k=3, batch=5)
    r_a1, r_b1 = retrieval.csls_penalties(a, b, k=3, batch=1000)
    np.testing.assert_allclose(r_a, r_a1, atol=1e-6)
    np.testing.assert_allclose(r_b, r_b1, atol=1e-6)
    small = retrieval.search(a, b, 4, query_penalty=r_a, target_penalty=r_b, batch=4)
    big = retrieval.search(a, b, 4, query_penalty=r_a, target_penalty=r_b, batch=1000)
    np.testing.assert_array_equal(small[0], big[0])
    full = 2 * a @ b.T - r_a[:, None] - r_b[None, :]  # (37, 23)
    np.testing.assert_array_equal(small[0][:, 0], full.argmax(axis=1))


# ---------------------------------------------------------------- CEDICT: glosses and the split

@pytest.mark.parametrize("gloss, expected", [
    ("cat", ["cat"]),
    ("to run", ["run"]),
    ("to seize; to usurp", ["seize", "usurp"]),
    ("(of an animal) to paw (the ground)", ["paw"]),
    ("book; letter; document", ["book", "letter", "document"]),
    ("a book", ["book"]),
    ("the sun", ["sun"]),
    ("Beijing", ["beijing"]),
    ("Get lost!", []),                             # two words
    ("to run away", []),
    ("variant of 哪[na3]", []),
    ("old variant of 麩|麸[fu1]", []),
    ("(old) variant of 才[cai2]", []),
    ("surname Wang", []),
    ("CL:個|个[ge4]", []),
    ("see 的士[di1 shi4]", []),
    ("abbr. for computers", []),
    ("lit. qilin's horn", []),
    ("fig. rarity", ["rarity"]),
    ("(coll.) (Tw) (nested (inner) note) bus", ["bus"]),
    ("café", []),                                  # not a-z
    ("9am-9pm", []),
    ("e-mail", []),
    ("modem (loanword)", ["modem"]),
])
def test_reduce_gloss(gloss: str, expected: list[str]) -> None:
    assert cedict.reduce_gloss(gloss) == expected


CEDICT_TEXT = """\
# CC-CEDICT
#! version=1
貓 猫 [mao1] /cat/(dialect) to hide oneself/
貓 猫 [mao2] /used in 貓腰|猫腰[mao2 yao1]/modem/
書 书 [shu1] /book/letter/document/CL:本[ben3]/to write/
跑 跑 [pao3] /to run/to run away/to escape/
3C 3C [san1 C] /abbr. for computers/
B站 B站 [B zhan4] /Bilibili/
王 王 [Wang2] /surname Wang/
王 王 [wang2] /king or monarch/best or strongest of its type/grand/great/
水 水 [shui3] /water/river/liquid/
的 的 [de5] /of/~'s (possessive particle)/
"""


def test_parse_cedict_merges_and_filters() -> None:
    entries = cedict.parse_cedict(CEDICT_TEXT)
    assert entries == {"猫": ["cat", "modem"], "书": ["book", "letter", "document", "write"],
                       "跑": ["run", "escape"], "王": ["grand", "great"], "水": ["water", "river", "liquid"],
                       "的": ["of"]}


def test_parse_cedict_names_a_bad_line() -> None:
    with pytest.raises(AttnlabError, match="dict.u8:2"):
        cedict.parse_cedict("# c\n猫 猫 mao1 /cat/\n", "dict.u8")


def test_split_by_headword_has_no_overlap() -> None:
    entries = cedict.parse_cedict(CEDICT_TEXT)
    counts = {"的": 100, "水": 50, "猫": 30, "书": 30, "跑": 10}  # 王 never seen: train
    train, test = cedict.split_headwords(entries, counts, test_start=1, test_size=3)
    assert test == sorted(["水", "书", "猫"])  # ranks 1-3: 水 50, then the 30s tied, by headword
    assert not set(train) & set(test)
    assert set(train) | set(test) == set(entries)
    with pytest.raises(AttnlabError, match="only 5 dictionary headwords"):
        cedict.split_headwords(entries, counts, test_start=3, test_size=3)


@pytest.mark.skipif(not (ROOT / "data/cedict/test.tsv").is_file(),
                    reason="data/cedict not fetched: run `attnlab data fetch cedict` (make test does)")
def test_real_cedict_split_has_no_overlap() -> None:
    train = {zh for zh, _ in read_pairs(ROOT / "data/cedict/train.tsv")}
    test = {zh for zh, _ in read_pairs(ROOT / "data/cedict/test.tsv")}
    every = {zh for zh, _ in read_pairs(ROOT / "data/cedict/all.tsv")}
    assert len(test) == 1500 and not train & test and train | test == every


# ---------------------------------------------------------------- dictionaries

def test_read_pairs_and_match(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("# comment\n猫\tcat\n猫\tcat\n书 book\n狗\tdog\n猫\tkitty\n", encoding="utf-8")
    pairs = read_pairs(path)
    assert pairs == [("猫", "cat"), ("书", "book"), ("狗", "dog"), ("猫", "kitty")]
    m = match(pairs, {"猫": 0, "书": 1}, {"cat": 5, "book": 7})
    assert m.ids.tolist() == [[0, 5], [1, 7]]
    assert m.unknown_src == ["狗"] and m.unknown_tgt == ["dog", "kitty"]
    path.write_text("猫\tcat\textra\n", encoding="utf-8")
    with pytest.raises(AttnlabError, match="d.tsv:1"):
        read_pairs(path)


# ---------------------------------------------------------------- the aligned space and the CLI

ZH = ["猫", "书", "跑", "水", "火", "山", "人", "大", "小", "好"]
EN = ["cat", "book", "run", "water", "fire", "mountain", "person", "big", "small", "good"]


def tiny_vectors(n_extra: int = 40, dim: int = 12, seed: int = 7) -> tuple[WordVectors, WordVectors, np.ndarray]:
    """English vectors and Chinese ones = the English rotated by Qᵀ plus a little noise; ZH[i] ↔ EN[i]."""
    rng = np.random.default_rng(seed)
    en_words = EN + [f"en{i}" for i in range(n_extra)]
    zh_words = ZH + [f"词{i}" for i in range(n_extra)]
    en = rng.standard_normal((len(en_words), dim)).astype(np.float32)  # (V, D)
    q = random_rotation(dim, seed + 1)
    zh = en @ q.T + 0.01 * rng.standard_normal(en.shape).astype(np.float32)
    counts = np.arange(len(en_words), 0, -1)
    return WordVectors(zh_words, zh, counts), WordVectors(en_words, en, counts), q


def test_align_vectors_recovers_the_rotation_and_translates() -> None:
    zh, en, q = tiny_vectors()
    seed_pairs = [(f"词{i}", f"en{i}") for i in range(30)]  # the test words ZH/EN are not in the seed
    space = align_vectors(zh, en, seed_pairs + [("狗", "dog")], procrustes.AlignConfig())
    np.testing.assert_allclose(space.w, q, atol=0.02)
    assert space.info["dictionary"] == {"given": 31, "pairs": 30, "unknown_src": 1, "unknown_tgt": 1}
    out = space.translate(["猫", "书", "狗"], n=3)
    assert [t.candidates[0][0] for t in out[:2]] == ["cat", "book"]
    assert out[2].candidates is None
    back = space.translate(["run"], reverse=True, method="cosine", n=1)
    assert back[0].candidates[0][0] == "跑" and back[0].candidates[0][1] > 0.99
    scores = space.evaluate(list(zip(ZH, EN)) + [("狗", "dog")])
    assert scores["zh-en"]["queries"] == 11 and scores["zh-en"]["covered"] == 10
    assert scores["zh-en"]["csls"] == {"p@1": 100.0, "p@5": 100.0, "p@10": 100.0}
    assert scores["zh-en"]["of_all"]["csls"]["p@1"] == 90.91  # 狗 has no vector: a miss among 11
    assert scores["en-zh"]["cosine"]["p@1"] == 100.0


def test_precision_at_k_by_hand() -> None:
    gold = {"猫": {"cat", "kitty"}, "书": {"book"}, "跑": {"run"}, "狗": {"dog"}}
    ranked = {"猫": ["dog", "kitty", "cat"], "书": ["book", "run"], "跑": ["walk", "go"]}  # 狗 uncovered
    assert precision_at_k(gold, ranked, ks=(1, 2)) == ({"p@1": 33.33, "p@2": 66.67}, {"p@1": 25.0, "p@2": 50.0})
    assert precision_at_k(gold, {}, ks=(1,)) == ({"p@1": None}, {"p@1": 0.0})


def test_align_vectors_without_usable_pairs_is_an_error() -> None:
    zh, en, _ = tiny_vectors()
    with pytest.raises(AttnlabError, match="no dictionary pair"):
        align_vectors(zh, en, [("狗", "dog")], procrustes.AlignConfig())


@pytest.fixture
def fitted(tmp_path: Path, capsys: pytest.CaptureFixture) -> Path:
    zh, en, _ = tiny_vectors()
    zh.save(tmp_path / "zh", formats=("safetensors",))
    en.save_word2vec(tmp_path / "en.txt", binary=False)  # the other accepted form
    (tmp_path / "train.tsv").write_text("".join(f"词{i}\ten{i}\n" for i in range(30)), encoding="utf-8")
    (tmp_path / "test.tsv").write_text("".join(f"{z}\t{e}\n" for z, e in zip(ZH, EN)) + "狗\tdog\n猫\tkitty\n",
                                       encoding="utf-8")
    assert main(["align", "fit", "--src", str(tmp_path / "zh"), "--tgt", str(tmp_path / "en.txt"),
                 "--dict", str(tmp_path / "train.tsv"), "--out", str(tmp_path / "aligned"), "--refine", "1",
                 "--refine-vocab", "50"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dictionary"]["pairs"] == 30 and len(report["rounds"]) == 2
    return tmp_path


def test_cli_fit_writes_an_aligned_folder(fitted: Path) -> None:
    folder = fitted / "aligned"
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "mapping.safetensors", "src", "tgt"]
    space = AlignedSpace.load(folder)
    assert len(space.src) == len(space.tgt) == 50 and space.w.shape == (12, 12)
    assert json.loads((folder / "config.json").read_text())["config"]["refine"] == 1


def test_cli_translate_reports_unknown_words(fitted: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["align", "translate", "--aligned", str(fitted / "aligned"), "猫", "狗", "跑", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("猫\tcat ") and lines[0].count("\t") == 2
    assert lines[1] == "狗\t(not in the zh vocabulary)"
    assert lines[2].startswith("跑\trun ")
    assert main(["align", "translate", "--aligned", str(fitted / "aligned"), "--reverse", "--method", "cosine",
                 "--json", "book", "dog"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["candidates"][0]["word"] == "书" and len(rows[0]["candidates"]) == 5
    assert rows[1] == {"word": "dog", "candidates": None}


def test_cli_eval_prints_precision_json(fitted: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["align", "eval", "--aligned", str(fitted / "aligned"), "--dict", str(fitted / "test.tsv")]) == 0
    scores = json.loads(capsys.readouterr().out)
    zh_en, en_zh = scores["zh-en"], scores["en-zh"]
    assert (zh_en["queries"], zh_en["covered"], zh_en["coverage"]) == (11, 10, 90.91)
    assert (en_zh["queries"], en_zh["covered"]) == (12, 10)  # dog and kitty have no vector
    for side in (zh_en, en_zh):
        for method in ("cosine", "csls"):
            assert side[method] == {"p@1": 100.0, "p@5": 100.0, "p@10": 100.0}


def test_cli_short_form_and_one_line_errors(fitted: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["align", "--src", str(fitted / "zh"), "--tgt", str(fitted / "en.txt"), "--dict",
                 str(fitted / "train.tsv"), "--out", str(fitted / "short")]) == 0
    assert json.loads(capsys.readouterr().out)["rounds"][0]["pairs"] == 30
    assert main(["align", "--src", str(fitted / "zh")]) == 2
    assert capsys.readouterr().err.strip() == "attnlab: error: align fit needs --tgt, --dict, --out"
    assert main(["align", "translate", "--aligned", str(fitted / "nowhere"), "猫"]) == 2
    assert "not an aligned folder" in capsys.readouterr().err
    (fitted / "none.tsv").write_text("狗\tdog\n", encoding="utf-8")
    assert main(["align", "fit", "--src", str(fitted / "zh"), "--tgt", str(fitted / "en.txt"), "--dict",
                 str(fitted / "none.tsv"), "--out", str(fitted / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("attnlab: error: no dictionary pair") and "狗" in err and "\n" not in err
    assert main(["align", "eval", "--aligned", str(fitted / "aligned"), "--dict", str(fitted / "none.tsv")]) == 0
    assert json.loads(capsys.readouterr().out)["zh-en"]["csls"]["p@1"] is None


# ---------------------------------------------------------------- the bilingual map

def test_bilingual_plot_returns_coordinates_and_writes_a_png(tmp_path: Path) -> None:
    from attnlab.viz.bilingual import plot_bilingual

    zh, en, _ = tiny_vectors()
    space = align_vectors(zh, en, [(f"词{i}", f"en{i}") for i in range(30)], procrustes.AlignConfig())
    pairs = list(zip(ZH, EN)) + [("狗", "dog")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        drawn = plot_bilingual(space, pairs, tmp_path / "map.png", max_pairs=8, extra_tgt=["en1", "nope"])
    assert not [w for w in caught if "missing from" in str(w.message)]  # the Chinese labels have glyphs
    assert drawn.src_words == ZH[:8] and drawn.tgt_words == EN[:8] + ["en1"]
    assert drawn.src_xy.shape == (8, 2) and drawn.tgt_xy.shape == (9, 2)
    assert drawn.lines == [(i, i) for i in range(8)]
    # aligned translations land next to each other: every line is shorter than the map's spread
    gaps = np.linalg.norm(drawn.src_xy - drawn.tgt_xy[:8], axis=1)
    assert gaps.max() < 0.2 * np.ptp(np.concatenate([drawn.src_xy, drawn.tgt_xy]), axis=0).max()
    png = (tmp_path / "map.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_bilingual_axes_follow_the_pairs_not_the_language_offset(tmp_path: Path) -> None:
    # Each English word is its Chinese word plus one shared offset, three times the meanings' spread:
    # a PCA of all the words would put the offset on PC1 and draw every pair apart; the pair-midpoint
    # axes see only the meanings, so each English word lands on its Chinese word.
    from types import SimpleNamespace

    from attnlab.viz.bilingual import plot_bilingual
    from attnlab.viz.embeddings import pca_2d

    rng = np.random.default_rng(0)
    meanings = np.pad(rng.standard_normal((12, 5)), ((0, 0), (0, 1))).astype(np.float32)  # (12, D), last axis 0
    offset = np.zeros(6, dtype=np.float32)  # along the last axis, which the meanings leave alone
    offset[5] = 3 * np.abs(meanings).max()
    zh, en = [f"词{i}" for i in range(12)], [f"en{i}" for i in range(12)]
    space = SimpleNamespace(src=WordVectors(zh, meanings), tgt=WordVectors(en, meanings + offset), langs=("zh", "en"))
    drawn = plot_bilingual(space, list(zip(zh, en)), tmp_path / "map.png")
    np.testing.assert_allclose(drawn.src_xy, drawn.tgt_xy, atol=1e-4)
    np.testing.assert_allclose(drawn.src_xy, pca_2d(meanings)[0], atol=1e-4)  # the meanings' own PCA
    words_pca, _ = pca_2d(np.concatenate([meanings, meanings + offset]))
    assert np.linalg.norm(words_pca[:12] - words_pca[12:], axis=1).min() > offset[5] * 0.9


def test_viz_embeddings_aligned_draws_dictionary_pairs(fitted: Path, capsys: pytest.CaptureFixture) -> None:
    out = fitted / "bilingual.png"
    assert main(["viz", "embeddings", "--aligned", str(fitted / "aligned"), "--dict", str(fitted / "test.tsv"),
                 "--pairs", "5", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out) == {"out": str(out), "words": 10}  # 5 zh + 5 en
    assert out.read_bytes().startswith(b"\x89PNG")
    assert main(["viz", "embeddings", "--aligned", str(fitted / "aligned"), "--vectors", str(fitted / "zh"),
                 "--out", str(out)]) == 2
    assert "exactly one of --vectors and --aligned" in capsys.readouterr().err
