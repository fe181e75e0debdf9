"""Tokenizer (fixed special ids, joint and separate models, round trip) and sacreBLEU scoring."""

import pytest

from attnlab.config import TokenizerConfig
from attnlab.errors import AttnlabError
from attnlab.metrics import score
from attnlab.tokenizer import SPECIALS, Tokenizer

PAIRS = [("我们试试看！", "Let's try it!"), ("你好。", "Hello."), ("这是一本书。", "This is a book.")] * 20


@pytest.mark.parametrize("joint", [True, False])
def test_train_load_round_trip(tmp_path, joint):
    tok = Tokenizer.train(PAIRS, TokenizerConfig(vocab_size=60, joint=joint), tmp_path)
    again = Tokenizer.load(tmp_path)
    assert again.joint == joint
    assert tuple(again.tgt.id_to_piece(i) for i in range(4)) == SPECIALS
    ids = again.encode_tgt(["This is a book."])
    assert again.decode_tgt(ids) == ["This is a book."]
    assert again.encode_src(["你好。"]) == tok.encode_src(["你好。"])


def test_missing_or_corrupt_model(tmp_path):
    with pytest.raises(AttnlabError, match="tokenizer model missing"):
        Tokenizer.load(tmp_path)
    (tmp_path / "joint.model").write_bytes(b"not a model")
    with pytest.raises(AttnlabError, match="corrupt"):
        Tokenizer.load(tmp_path)


def test_empty_corpus(tmp_path):
    with pytest.raises(AttnlabError, match="empty corpus"):
        Tokenizer.train([], TokenizerConfig(vocab_size=60), tmp_path)


def test_multi_reference_bleu_and_zh_tokenizer():
    hyps = ["the cat sat on the mat", "a dog barks"]
    one = score(hyps, [["the cat is on the mat"], ["a dog barks"]], "en")
    two = score(hyps, [["the cat is on the mat", "the cat sat on the mat"], ["a dog barks"]], "en")
    assert two.bleu > one.bleu and two.bleu == 100.0
    assert "nrefs:var" in two.bleu_signature and "tok:13a" in two.bleu_signature
    zh = score(["我们试试看"], [["我们试试看"]], "zh")
    assert zh.bleu == 100.0 and "tok:zh" in zh.bleu_signature
