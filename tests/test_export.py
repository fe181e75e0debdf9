"""Tests for attnlab.export: CTranslate2 and ONNX round trips of a tiny trained model.

The model is conftest's `tiny_run`, trained once per test run on the numbers corpus. Each export must
translate like the PyTorch model it came from: greedy outputs token for token (CTranslate2, and
onnxruntime running the encoder and decoder-step graphs), and beam search too when no length penalty
separates the two engines' scoring. Where two outputs differ, the difference must be a floating-point tie
(tests/searches.py), which falls one way or the other depending on the CPU, and almost every output must
be identical.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlab.cli import main
from attnlab.decoding import beam_search
from attnlab.errors import AttnlabError
from attnlab.translate.pytorch import Translator
from conftest import number_pairs
from searches import assert_beam_agrees, assert_greedy_agrees, token_log_probs

EXPORT_EXTRA = "pip install -e '.[export]' (make setup does)"
pytest.importorskip("ctranslate2", reason=f"the ctranslate2 package is not installed: {EXPORT_EXTRA}")
pytest.importorskip("onnxruntime", reason=f"the onnxruntime package is not installed: {EXPORT_EXTRA}")

from attnlab.export.ctranslate2 import export_ctranslate2  # noqa: E402
from attnlab.export.onnx import DecoderStepGraph, export_onnx  # noqa: E402
from attnlab.translate.base import length_batches  # noqa: E402
from attnlab.translate.ctranslate2 import CT2Translator, output_limit  # noqa: E402
from attnlab.translate.onnx import OnnxTranslator  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tiny_run) -> Path:
    """A tiny zh->en model trained through the CLI (conftest's `tiny_run`, shared with other modules)."""
    return tiny_run


@pytest.fixture(scope="module")
def translator(run_dir) -> Translator:
    torch.set_num_threads(1)
    return Translator.load(run_dir)


@pytest.fixture(scope="module")
def sources(translator) -> list[list[int]]:
    lines = [src for src, _ in number_pairs(30, 3)] + ["一二三四五六七八九零一二", "零"]
    return translator.encode(lines)


@pytest.fixture(scope="module")
def ct2_dir(run_dir, tmp_path_factory) -> Path:
    return export_ctranslate2(run_dir, tmp_path_factory.mktemp("ct2") / "model")


def few(tied: list[int], n: int) -> bool:
    """At most a tenth of n outputs differ by a tie: the comparison did not pass because everything tied."""
    return len(tied) <= n // 10


def test_ctranslate2_greedy_equals_attnlab(translator, sources, ct2_dir):
    ct2 = CT2Translator.load(ct2_dir, threads=1)
    ours = translator.translate_ids(sources, beam=1)
    assert len({len(h) for h in ours}) >= 3  # outputs of several lengths: <eos> is predicted, not just cut
    theirs = ct2.translate_ids(sources, beam=1)
    assert few(assert_greedy_agrees(translator.model, sources, ours, theirs, translator.options(1)), len(sources))


def test_ctranslate2_beam_equals_attnlab_without_length_penalty(translator, sources, ct2_dir):
    """The two beam searches keep the same 2K candidates and finish the same way; only the length penalties
    differ (length^α against GNMT's), so with α = 0 the best hypotheses must agree, up to ties."""
    ct2 = CT2Translator.load(ct2_dir, threads=1)
    opts = dataclasses.replace(translator.options(4), length_penalty=0.0)
    tied = []
    for batch in length_batches(sources, opts, max_tokens=6000, one_limit=True):  # the batches one CT2 call takes
        src = [sources[i] for i in batch]
        ours = beam_search(translator.model, _pad(src), opts)
        theirs = ct2.translate_batch(src, opts, output_limit(len(src[0]), opts))
        tied += assert_beam_agrees(translator.model, src, ours, theirs, opts, theirs_renormalised=True)
    assert few(tied, len(sources))


def test_the_tie_checks_catch_a_real_difference(translator, sources):
    """What the comparisons above allow is only a tie: a changed token or hypothesis is an error."""
    ours = translator.translate_ids(sources, beam=1)
    i = max(range(len(ours)), key=lambda i: len(ours[i]))
    first = token_log_probs(translator.model, sources[i], [], translator.options(1), ended=True)[0]  # (V,)
    wrong = [list(h) for h in ours]
    wrong[i][0] = int(first[4:].argmin()) + 4  # the least likely first token that is not a special one
    with pytest.raises(AssertionError, match="not a tie"):
        assert_greedy_agrees(translator.model, sources, ours, wrong, translator.options(1))
    with pytest.raises(AssertionError, match="not a tie"):
        assert_beam_agrees(translator.model, sources, ours, wrong, translator.options(1))
    # what decides is the size of the gap: with no limit on it, the same change passes as a tie
    assert assert_greedy_agrees(translator.model, sources, ours, wrong, translator.options(1), tol=math.inf) == [i]
    assert assert_beam_agrees(translator.model, sources, ours, wrong, translator.options(1), tol=math.inf) == [i]


def test_ctranslate2_text_round_trip_keeps_lines(run_dir, ct2_dir, translator):
    lines = ["一二三", "", "五六七八"]
    ct2 = CT2Translator.load(ct2_dir, threads=1)
    ids = translator.encode(lines)
    theirs = ct2.translate_ids(ids, beam=1)
    assert_greedy_agrees(translator.model, ids, translator.translate_ids(ids, beam=1), theirs, translator.options(1))
    assert ct2.translate(lines, beam=1) == translator.tokenizer.decode_tgt(theirs)  # the text pipeline around it
    assert ct2.translate(lines, beam=1)[1] == ""


def test_ctranslate2_int8_translates(run_dir, tmp_path, sources):
    out = export_ctranslate2(run_dir, tmp_path / "int8", quantization="int8")
    assert json.loads((out / "config.json").read_text())["unk_token"] == "<unk>"
    hyps = CT2Translator.load(out, threads=1).translate_ids(sources[:5], beam=2)
    assert len(hyps) == 5 and all(isinstance(t, int) for h in hyps for t in h)


def test_export_refuses_to_overwrite(run_dir, tmp_path, ct2_dir):
    with pytest.raises(AttnlabError, match="already exists"):
        export_ctranslate2(run_dir, ct2_dir)
    export_ctranslate2(run_dir, ct2_dir, force=True)  # an earlier export may be replaced
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(AttnlabError, match="not one"):
        export_ctranslate2(run_dir, other, force=True)
    with pytest.raises(AttnlabError, match="not one"):
        export_onnx(run_dir, run_dir, force=True)
    assert (other / "keep.txt").read_text() == "mine"
    with pytest.raises(AttnlabError, match="unknown quantization 'int3'"):
        export_ctranslate2(run_dir, tmp_path / "q", quantization="int3")
    with pytest.raises(AttnlabError, match="not a CTranslate2 export"):
        CT2Translator.load(other)


@pytest.fixture(scope="module")
def onnx_dir(run_dir, tmp_path_factory) -> Path:
    return export_onnx(run_dir, tmp_path_factory.mktemp("onnx") / "model")


def test_onnx_graphs_equal_the_model(translator, sources, onnx_dir):
    """Encoder outputs and two decoder steps through onnxruntime against the PyTorch model."""
    ort = OnnxTranslator.load(onnx_dir, threads=1)
    model = translator.model
    src = _pad(sources[:4])  # (B,S) with padding
    cross = ort.encoder.run(None, {"src": src.numpy()})
    with torch.inference_mode():
        memory = model.encode(src)
        state = model.start_decoding(memory)
        for (k, v), ok, ov in zip(state.memory_kv, cross[::2], cross[1::2]):
            np.testing.assert_allclose(ok, k.numpy(), rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(ov, v.numpy(), rtol=1e-5, atol=1e-4)
        n_layers = len(model.decoder)
        past = [np.zeros((4, model.cfg.n_heads, 0, model.cfg.d_model // model.cfg.n_heads), np.float32)] * (2 * n_layers)
        for position, token in enumerate([1, 7]):  # <bos>, then any token
            tokens = torch.full((4, 1), token)
            expected = model.logits(model.decode(tokens, state=state).hidden[:, -1])  # (4,V)
            feed = {"tokens": tokens.numpy(), "position": np.array(position), "src_mask": (src != 0).numpy(),
                    **{f"cross_{kind}_{i}": cross[2 * i + j] for i in range(n_layers) for j, kind in enumerate("kv")},
                    **{f"past_{kind}_{i}": past[2 * i + j] for i in range(n_layers) for j, kind in enumerate("kv")}}
            logits, *past = ort.step.run(None, feed)
            np.testing.assert_allclose(logits, expected.numpy(), rtol=1e-5, atol=1e-4)
            assert past[0].shape[2] == position + 1


def test_onnx_greedy_equals_attnlab(translator, sources, onnx_dir):
    ort = OnnxTranslator.load(onnx_dir, threads=1)
    theirs = ort.translate_ids(sources, beam=1)
    ours = translator.translate_ids(sources, beam=1)
    assert few(assert_greedy_agrees(translator.model, sources, ours, theirs, translator.options(1)), len(sources))
    ids = translator.encode(["一二三"])
    assert ort.translate(["一二三", ""], beam=1) == [*translator.tokenizer.decode_tgt(ort.translate_ids(ids, beam=1)), ""]


def test_onnx_step_graph_equals_the_layers(translator, sources):
    """The graph module itself, in PyTorch, against the model's own cached decoding (no export needed)."""
    model = translator.model
    graph = DecoderStepGraph(model)
    src = _pad(sources[:3])
    with torch.no_grad():
        state = model.start_decoding(model.encode(src))
        cross = [t for kv in state.memory_kv for t in kv]
        h, dh = model.cfg.n_heads, model.cfg.d_model // model.cfg.n_heads
        past = [torch.zeros(3, h, 0, dh)] * len(cross)
        for position, token in enumerate([1, 9, 12]):
            tokens = torch.full((3, 1), token)
            logits, *past = graph(tokens, torch.tensor(position), src != 0, *cross, *past)
            with torch.enable_grad():  # the layers' readable path, not the fast step
                expected = model.logits(model.decode(tokens, state=state).hidden[:, -1])
            torch.testing.assert_close(logits, expected.detach(), atol=1e-5, rtol=1e-5)


def test_export_cli(run_dir, tmp_path, capsys):
    from attnlab.cli.export import register

    parser = argparse.ArgumentParser(prog="attnlab")
    register(parser.add_subparsers(dest="command", required=True))
    for fmt in ("ctranslate2", "onnx"):
        args = parser.parse_args(["export", fmt, "--model", str(run_dir), "--out", str(tmp_path / fmt)])
        assert args.func(args) == 0
        files = json.loads(capsys.readouterr().out)["files"]
        assert "joint.model" in files and "attnlab.toml" in files
    assert (tmp_path / "ctranslate2" / "model.bin").is_file() and (tmp_path / "onnx" / "decoder_step.onnx").is_file()
    export = next(a for a in parser._subparsers._group_actions[0].choices["export"]._actions
                  if isinstance(a, argparse._SubParsersAction))
    for sub in export.choices.values():  # every flag explains itself in --help
        assert all(a.help for a in sub._actions)


def _pad(rows: list[list[int]]) -> torch.Tensor:
    from attnlab.data.batching import pad_sources

    return pad_sources(rows)


def test_translate_engine_ctranslate2_through_the_cli(run_dir, ct2_dir, tmp_path, capsys):
    """`attnlab translate --engine ctranslate2` prints what the CTranslate2 engine translates (which agrees
    with the PyTorch model, tested above), one line per input line like the PyTorch model's command."""
    src = tmp_path / "in.txt"
    src.write_text("一二三\n\n五六\n", encoding="utf-8")
    assert main(["translate", "--model", str(run_dir), "--input", str(src), "--beam", "1"]) == 0
    ours = capsys.readouterr().out
    assert main(["translate", "--engine", "ctranslate2", "--model", str(ct2_dir), "--input", str(src),
                 "--beam", "1"]) == 0
    theirs = capsys.readouterr().out
    assert len(ours.splitlines()) == 3 and theirs.splitlines()[1] == ""
    assert theirs.splitlines() == CT2Translator.load(ct2_dir, threads=1).translate(["一二三", "", "五六"], beam=1)
