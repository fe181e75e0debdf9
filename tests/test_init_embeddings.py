"""Starting the translation model's embeddings from Word2Vec vectors: the piece-to-word rules, the
projection, and `attnlab train --init-embeddings` on the tiny corpus."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlab.word2vec.init_embeddings import InitReport, init_embedding, project, subword_vectors
from attnlab.word2vec.vectors import WordVectors
from conftest import EN


def _vectors(words: list[str], dim: int = 6, seed: int = 0) -> WordVectors:
    rng = np.random.default_rng(seed)
    return WordVectors(words, rng.standard_normal((len(words), dim)).astype(np.float32))


def test_pieces_take_whole_words_then_averages():
    vec = _vectors(["cat", "cats", "catalog", "dog"])
    pieces = ["<pad>", "<s>", "</s>", "<unk>", "▁cat", "s", "alog", "▁dog", "▁zebra"]
    ids = {p: i for i, p in enumerate(pieces)}
    seg = {"cat": ["▁cat"], "cats": ["▁cat", "s"], "catalog": ["▁cat", "alog"], "dog": ["▁dog"]}
    encode = lambda w: [ids[p] for p in seg.get(w, ["<unk>"])]  # noqa: E731
    out, rule = subword_vectors([vec], pieces, encode)
    cen = vec.vectors - vec.vectors.mean(axis=0)
    assert rule.tolist() == [0, 0, 0, 0, 1, 2, 2, 1, 0]
    np.testing.assert_allclose(out[ids["▁cat"]], cen[0])
    np.testing.assert_allclose(out[ids["s"]], cen[1])  # only "cats" contains "s"
    np.testing.assert_allclose(out[ids["alog"]], cen[2])
    assert not out[ids["▁zebra"]].any()


def test_first_folder_wins_and_whole_words_beat_averages():
    zh = _vectors(["我们", "你们"], seed=1)
    en = _vectors(["we", "我们"], seed=2)
    pieces = ["<pad>", "<s>", "</s>", "<unk>", "我们", "▁we", "们"]
    encode = lambda w: {"你们": [3, 6], "我们": [4]}.get(w, [3])  # noqa: E731
    out, rule = subword_vectors([zh, en], pieces, encode)
    assert rule.tolist() == [0, 0, 0, 0, 1, 1, 2]
    np.testing.assert_allclose(out[4], zh.vectors[0] - zh.vectors.mean(axis=0))
    np.testing.assert_allclose(out[5], en.vectors[0] - en.vectors.mean(axis=0))


def test_widening_projection_keeps_cosines():
    m = np.random.default_rng(3).standard_normal((20, 8)).astype(np.float32)
    p = project(m, 32)
    assert p.shape == (20, 32)
    np.testing.assert_allclose(p @ p.T, m @ m.T, rtol=1e-4, atol=1e-4)  # inner products unchanged
    assert project(m, 8) is m
    assert project(m, 4).shape == (20, 4)


def test_init_embedding_overwrites_only_covered_rows_at_the_init_scale():
    vec = _vectors(["a", "b", "c"])
    pieces = ["<pad>", "<s>", "</s>", "<unk>", "▁a", "▁b", "▁c", "▁q"]
    weight = torch.randn(len(pieces), 16) / 4
    before = weight.clone()
    report = init_embedding(weight, [vec], pieces, lambda w: [3])
    assert report == InitReport(whole_words=3, averaged=0, untouched=1)
    assert torch.equal(weight[:4], before[:4]) and torch.equal(weight[7], before[7])
    assert not torch.equal(weight[4:7], before[4:7])
    assert weight[4:7].norm(dim=1).mean().item() == pytest.approx(before[4:7].norm(dim=1).mean().item(), rel=1e-5)


def test_train_with_init_embeddings(tiny_corpus, tmp_path, caplog):
    """The prepared run starts from the vectors: two English number pieces are as similar as their words."""
    from attnlab.config import load_config
    from attnlab.distributed import setup
    from attnlab.prepare import prepare_run

    vec = _vectors(EN, dim=8, seed=5)
    vec.save(tmp_path / "en-vectors")
    cfg = load_config(tiny_corpus["config"], [f"train.init_embeddings={tmp_path / 'en-vectors'}"])
    with caplog.at_level("INFO"):
        run = prepare_run(cfg, tmp_path / "run", setup("cpu"))
    assert "pieces from whole words" in caplog.text
    proc = run.tokenizer.src
    emb = run.model.src_embed.weight.detach()
    whole = [w for w in EN if proc.piece_to_id("▁" + w) != proc.unk_id()]
    assert len(whole) >= 2, "the tiny vocabulary should hold a few English words whole"
    a, b = whole[:2]
    ea, eb = emb[proc.piece_to_id("▁" + a)], emb[proc.piece_to_id("▁" + b)]
    cen = vec.vectors - vec.vectors.mean(axis=0)
    va, vb = cen[vec.index[a]], cen[vec.index[b]]
    want = float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))
    assert torch.nn.functional.cosine_similarity(ea, eb, dim=0).item() == pytest.approx(want, abs=1e-5)
