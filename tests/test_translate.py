"""attnlab.translate: the shared text pipeline on a fake engine, length bucketing as a table, and every engine
behind the same doors (`evaluate --engine`, the HTTP service), on conftest's tiny trained run."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from attnlab.cli import main
from attnlab.decoding import DecodeOptions, output_limit
from attnlab.errors import AttnlabError
from attnlab.serve.app import create_app
from attnlab.serve.settings import ServeSettings
from attnlab.translate import load_engine
from attnlab.translate.base import TranslatorBase, length_batches
from attnlab.translate.pytorch import Translator


class Reverse(TranslatorBase):
    """An engine that outputs each source's ids reversed, and records its batches."""

    def __init__(self, translator: Translator) -> None:
        super().__init__(translator.cfg, translator.tokenizer)
        self.batches: list[int] = []

    def translate_batch(self, src_ids, opts):
        self.batches.append(len(src_ids))
        return [list(reversed(x)) for x in src_ids]


@pytest.fixture(scope="module")
def translator(tiny_run) -> Translator:
    return Translator.load(tiny_run)


def test_pipeline_one_line_per_line_and_empty_stays_empty(translator):
    engine = Reverse(translator)
    lines = ["一二三", "", "  ", "四\u2028五"]
    out = engine.translate(lines, beam=1)
    assert len(out) == 4 and out[1] == out[2] == "" and all("\u2028" not in line for line in out)
    assert sum(engine.batches) == 2  # only the sentences with tokens reach the engine


def test_pipeline_truncates_long_inputs_with_one_warning(translator, caplog):
    engine = Reverse(translator)
    limit = engine.cfg.decode.max_input_tokens
    with caplog.at_level(logging.WARNING):
        ids = engine.encode(["一二三四五六七八九零" * limit, "九八七六五四三二一零" * limit, "三"])
    assert [len(x) <= limit for x in ids] == [True] * 3 and engine.truncated == 2
    assert len([r for r in caplog.records if "truncated" in r.message]) == 1


@pytest.mark.parametrize("lengths, max_tokens, one_limit, expected", [
    ([3, 1, 2], 1000, False, [[1, 2, 0]]),              # sorted by length, one batch
    ([3, 0, 2], 1000, False, [[2, 0]]),                 # empty sentences are left out
    ([2, 2, 2, 2], 4 * 3 * 4, False, [[0, 1, 2, 3]]),   # rows × beams × 3 × (longest + 2) = 48 fits
    ([2, 2, 2, 2], 4 * 3 * 4 - 1, False, [[0, 1, 2], [3]]),
    ([2, 3], 1000, False, [[0, 1]]),
    ([2, 3], 1000, True, [[0], [1]]),                   # limits floor(1.5·2 + 10) = 13 and 14 differ
    ([4, 4], 1000, True, [[0, 1]]),
])
def test_length_batches(lengths, max_tokens, one_limit, expected):
    src = [[5] * n for n in lengths]
    assert length_batches(src, DecodeOptions(beam=1), max_tokens, one_limit=one_limit) == expected


def test_output_limit_is_the_one_formula():
    opts = DecodeOptions(max_len_a=1.5, max_len_b=10)
    assert [output_limit(n, opts) for n in (0, 1, 2, 3)] == [10, 11, 13, 14]
    assert output_limit(0, DecodeOptions(max_len_a=0.0, max_len_b=0)) == 1


def test_options_come_from_the_config(translator):
    opts = translator.options()
    d = translator.cfg.decode
    assert (opts.beam, opts.length_penalty, opts.max_len_a, opts.max_len_b) == (d.beam, d.length_penalty,
                                                                                 d.max_len_a, d.max_len_b)
    assert translator.options(3).beam == 3
    with pytest.raises(AttnlabError, match="beam must be at least 1"):
        translator.options(0)


def test_an_engine_without_attention_maps_says_so(translator):
    with pytest.raises(AttnlabError, match="gives no attention maps"):
        Reverse(translator).attention("一二三")


# -- the exported engines behind the same doors --------------------------------------------------------------

@pytest.fixture(scope="module")
def ct2_dir(tiny_run, tmp_path_factory):
    pytest.importorskip("ctranslate2")
    from attnlab.export.ctranslate2 import export_ctranslate2

    return export_ctranslate2(tiny_run, tmp_path_factory.mktemp("ct2") / "model")


def test_evaluate_takes_an_engine(tiny_run, ct2_dir, capsys):
    scores = {}
    for engine, model in (("attnlab", tiny_run), ("ctranslate2", ct2_dir)):
        assert main(["-q", "evaluate", "--model", str(model), "--engine", engine, "--beam", "1"]) == 0
        scores[engine] = json.loads(capsys.readouterr().out)
    assert scores["attnlab"]["direction"] == scores["ctranslate2"]["direction"] == "zh-en"
    assert abs(scores["attnlab"]["bleu"] - scores["ctranslate2"]["bleu"]) < 5  # the same greedy outputs, up to ties


def test_onnx_engine_runs_attnlabs_beam_search(translator, tiny_run, tmp_path):
    """The graphs stand in for the model under the same searches: beam outputs equal the model's."""
    pytest.importorskip("onnxruntime")
    from attnlab.export.onnx import export_onnx

    engine = load_engine("onnx", export_onnx(tiny_run, tmp_path / "onnx"), threads=1)
    lines = ["一二三", "", "四五六七八", "九"]
    assert engine.translate(lines, beam=3) == translator.translate(lines, beam=3)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_the_service_serves_a_ctranslate2_model(translator, ct2_dir):
    engine = load_engine("ctranslate2", ct2_dir, threads=1)
    app = create_app(engine, ServeSettings(), run_dir=ct2_dir)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://attnlab.test") as client:
            info = (await client.get("/v1/model")).json()
            assert info["sizes"]["parameters"] == sum(p.numel() for p in translator.model.parameters())
            r = await client.post("/v1/translate", json={"texts": ["一二三", ""], "beam": 1})
            assert r.status_code == 200 and r.json()["translations"] == engine.translate(["一二三", ""], beam=1)
            r = await client.post("/v1/translate", json={"texts": ["一二三"], "attention": True})
            assert r.status_code == 422 and "no attention maps" in r.json()["error"]
    finally:
        await lifespan.__aexit__(None, None, None)


def test_load_engine_names_a_folder_of_the_wrong_kind(tiny_run):
    pytest.importorskip("ctranslate2")
    with pytest.raises(AttnlabError, match="not a CTranslate2 export"):
        load_engine("ctranslate2", tiny_run)
