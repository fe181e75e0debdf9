"""Checkpoints: weights and optimizer round trip through safetensors, atomic folders, fallback past a
corrupt newest checkpoint, manifest checks."""

import json

import pytest
import torch

from attnlab import checkpoint
from attnlab.config import ModelConfig
from attnlab.errors import AttnlabError
from attnlab.model import Seq2SeqTransformer


def _model_and_optimizer(seed: int):
    torch.manual_seed(seed)
    model = Seq2SeqTransformer(ModelConfig(vocab_size=30, d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1,
                                           n_decoder_layers=1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
    src, tgt = torch.randint(4, 30, (2, 5)), torch.randint(4, 30, (2, 4))
    model(src, tgt).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_restores_weights_optimizer_and_rng(tmp_path):
    model, opt = _model_and_optimizer(0)
    torch.manual_seed(123)
    ckpt = checkpoint.save_checkpoint(tmp_path, model, opt, {"step": 7, "epoch": 1, "position": 3})
    expected_draw = torch.rand(3)
    other, other_opt = _model_and_optimizer(1)
    state = checkpoint.load_checkpoint(ckpt, other, other_opt)
    assert state["step"] == 7 and state["position"] == 3
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)
    for pa, pb in zip(model.parameters(), other.parameters()):
        sa, sb = opt.state[pa], other_opt.state[pb]
        assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    assert torch.equal(torch.rand(3), expected_draw)  # RNG restored to the moment of saving
    assert other.src_embed.weight is other.tgt_embed.weight  # ties survive loading


def test_tied_weights_stored_once():
    model, _ = _model_and_optimizer(0)
    names = checkpoint.weights_dict(model)
    assert "src_embed.weight" in names and "tgt_embed.weight" not in names


def test_keeps_newest_and_falls_back_past_corruption(tmp_path, caplog):
    model, opt = _model_and_optimizer(0)
    for step in (1, 2, 3):
        checkpoint.save_checkpoint(tmp_path, model, opt, {"step": step}, keep=2)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert kept == ["step-00000002", "step-00000003"]
    newest = tmp_path / "checkpoints" / "step-00000003" / "model.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated
    assert checkpoint.latest_checkpoint(tmp_path).name == "step-00000002"
    assert "falling back" in caplog.text


def test_weights_that_do_not_fit_are_named(tmp_path):
    model, _ = _model_and_optimizer(0)
    path = tmp_path / "w.safetensors"
    path.write_bytes(checkpoint.weights_bytes(model))
    bigger = Seq2SeqTransformer(ModelConfig(vocab_size=31, d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1,
                                            n_decoder_layers=1))
    with pytest.raises(AttnlabError, match="src_embed.weight has shape"):
        checkpoint.load_weights(bigger, path)


def test_manifest_detects_silent_corruption(tmp_path):
    from attnlab.config import Config

    model, _ = _model_and_optimizer(0)
    (tmp_path / "tokenizer").mkdir()
    checkpoint.save_config(tmp_path, Config())
    checkpoint.save_best(tmp_path, model, {"dev_bleu": 1.0})
    checkpoint.verify_manifest(tmp_path)
    data = bytearray((tmp_path / "model.safetensors").read_bytes())
    data[-1] ^= 1  # one flipped bit in a weight: still loads, but the checksum catches it
    (tmp_path / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(AttnlabError, match="does not match its checksum"):
        checkpoint.verify_manifest(tmp_path)
    assert json.loads((tmp_path / "scores.json").read_text())["dev_bleu"] == 1.0
