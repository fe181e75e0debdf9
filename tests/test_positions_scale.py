"""model.positions and model.attention_scale: each kind against its formula, honoured alike by encode,
the readable cached decode and the fast decode_step; the config's checks; exporters that refuse what
their format cannot express."""

import math

import pytest
import torch

from attnlab.config import POSITIONS, Config, ModelConfig, attention_divisor, config_from_dict
from attnlab.errors import AttnlabError
from attnlab.export import check_additive, check_learned_positions
from attnlab.model import Seq2SeqTransformer
from attnlab.nn.attention import attention_fused, attention_readable
from attnlab.nn.positional import PositionalEncoding, rotate_pairs, sinusoidal_table

D, H, V = 16, 2, 40


def tiny(**kw) -> Seq2SeqTransformer:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=V, d_model=D, n_heads=H, d_ff=32, n_encoder_layers=2, n_decoder_layers=2,
                      dropout=0.0, **kw)
    return Seq2SeqTransformer(cfg).double().eval()


@pytest.mark.parametrize("kind,formula", [
    ("add", lambda x, pe: x + pe),
    ("multiply", lambda x, pe: x * pe),
    ("multiply1p", lambda x, pe: x * (1 + pe)),
    ("none", lambda x, pe: x),
])
def test_each_kind_mixes_as_its_formula(kind, formula):
    x = torch.randn(2, 5, D)
    pe = sinusoidal_table(8, D)[3:8]  # positions 3 .. 7
    torch.testing.assert_close(PositionalEncoding(D, 8, kind)(x, offset=3), formula(x, pe))


def test_rotate_turns_each_pair_by_its_angle_and_keeps_lengths():
    x = torch.randn(4, D)
    pe = sinusoidal_table(4, D)
    turned = rotate_pairs(x, pe)
    as_complex = torch.complex(x[:, 0::2], x[:, 1::2]) * torch.complex(pe[:, 1::2], pe[:, 0::2])  # x · e^{iθ}
    torch.testing.assert_close(turned[:, 0::2], as_complex.real)
    torch.testing.assert_close(turned[:, 1::2], as_complex.imag)
    torch.testing.assert_close(turned.norm(dim=-1), x.norm(dim=-1))  # content is turned, never scaled or erased
    torch.testing.assert_close(turned[0], x[0])  # position 0: angle 0


def test_learned_positions_are_a_trained_table():
    model = tiny(positions="learned", max_positions=16)
    table = model.positions.learned
    assert table.requires_grad and table.shape == (16, D)
    assert "positions.learned" in dict(model.named_parameters())
    assert table.std().item() == pytest.approx(0.5**0.5, rel=0.3)
    with pytest.raises(ValueError, match="learned positions stop at 16"):
        model.encode(torch.randint(4, V, (1, 20)))


@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("scale", ["sqrt", "none", "dk", "3.5"])
def test_every_path_honours_positions_and_scale(positions, scale):
    """Teacher-forced decoding equals one position at a time by the readable path and by decode_step."""
    model = tiny(positions=positions, attention_scale=scale)
    src = torch.randint(4, V, (2, 6))
    src[1, 4:] = 0
    tgt = torch.randint(4, V, (2, 5))
    tgt[:, 0] = 1
    with torch.inference_mode():
        memory = model.encode(src)
        full = model.logits(model.decode(tgt, memory=memory).hidden)  # (2,5,V)
        readable, fast = model.start_decoding(memory), model.start_decoding(memory)
        for t in range(5):
            step = tgt[:, t : t + 1]
            torch.testing.assert_close(model.logits(model.decode(step, state=readable).hidden[:, -1]), full[:, t])
            torch.testing.assert_close(model.decode_step(step, fast), full[:, t])


def test_defaults_keep_the_paper():
    cfg = ModelConfig()
    assert cfg.positions == "add" and cfg.attention_scale == "sqrt"
    assert tiny().encoder[0].self_attn.scale == pytest.approx(1 / math.sqrt(D // H))


@pytest.mark.parametrize("scale,divisor", [("sqrt", 4.0), ("none", 1.0), ("dk", 16.0), ("8", 8.0), ("2.5", 2.5)])
def test_attention_divisor(scale, divisor):
    assert attention_divisor(scale, 16) == divisor


def test_readable_equals_fused_with_any_scale():
    q, k, v = (torch.randn(2, 2, n, 8, dtype=torch.float64, requires_grad=True) for n in (3, 5, 5))
    for scale in (1.0, 0.1, 2.0):
        out_r, w = attention_readable(q, k, v, scale=scale)
        torch.testing.assert_close(out_r, attention_fused(q, k, v, scale=scale))
        torch.testing.assert_close(w, (q @ k.transpose(-2, -1) * scale).softmax(-1))


@pytest.mark.parametrize("model,message", [
    ({"positions": "mul"}, "model.positions must be one of add, multiply"),
    ({"attention_scale": "big"}, "model.attention_scale must be one of sqrt, none, dk or a positive number"),
    ({"attention_scale": "-2"}, "model.attention_scale must be one of"),
    ({"attention_scale": "nan"}, "model.attention_scale must be one of"),
])
def test_config_names_a_bad_value(model, message):
    with pytest.raises(AttnlabError, match=message):
        config_from_dict({"model": model})


@pytest.mark.parametrize("model,ok", [
    ({}, True), ({"positions": "learned"}, True), ({"positions": "none"}, True),
    ({"positions": "multiply1p"}, False), ({"positions": "rotate"}, False), ({"attention_scale": "none"}, False),
])
def test_ctranslate2_refuses_what_it_cannot_express(model, ok):
    cfg = config_from_dict({"model": model})
    if ok:
        check_additive(cfg, "CTranslate2")
    else:
        with pytest.raises(AttnlabError, match="CTranslate2 .* cannot express"):
            check_additive(cfg, "CTranslate2")


def test_learned_table_must_reach_every_exported_position():
    cfg = config_from_dict({"model": {"positions": "learned", "max_positions": 64}})
    with pytest.raises(AttnlabError, match="learned positions stop at 64"):
        check_learned_positions(cfg, "ONNX")
    check_learned_positions(Config(), "ONNX")


@pytest.mark.parametrize("positions,scale", [("rotate", "dk"), ("learned", "none"), ("multiply1p", "sqrt")])
def test_onnx_graphs_express_positions_and_scale(positions, scale, tmp_path):
    """The encoder and decoder-step graphs of a model with other positions and scale, run by onnxruntime."""
    ort = pytest.importorskip("onnxruntime")
    from attnlab.export.onnx import ENCODER_FILE, STEP_FILE, _export_graphs

    model = tiny(positions=positions, attention_scale=scale, max_positions=32).float()
    _export_graphs(model, tmp_path, opset=17)
    model.eval()  # the exporter leaves the wrapped model in training mode
    encoder = ort.InferenceSession(str(tmp_path / ENCODER_FILE))
    step = ort.InferenceSession(str(tmp_path / STEP_FILE))
    src = torch.randint(4, V, (2, 5))
    cross = encoder.run(None, {"src": src.numpy()})
    with torch.inference_mode():
        state = model.start_decoding(model.encode(src))
        past = [torch.zeros(2, H, 0, D // H).numpy()] * (2 * len(model.decoder))
        for position, token in enumerate([1, 7, 9]):
            tokens = torch.full((2, 1), token)
            expected = model.decode_step(tokens, state)
            names = [i.name for i in step.get_inputs()]
            feed = dict(zip(names, [tokens.numpy(), torch.tensor(position).numpy(), (src != 0).numpy(), *cross, *past]))
            logits, *past = step.run(None, feed)
            torch.testing.assert_close(torch.from_numpy(logits), expected, atol=1e-4, rtol=1e-4)
