"""The decoding options around the translator, through each door: the Python API (`translate_hypotheses`,
`score`) on the PyTorch and CTranslate2 engines, the command line (`translate` flags, `score`), and the HTTP
API (`/v1/translate` options and the OpenAPI schema), on conftest's tiny trained run."""

from __future__ import annotations

import json

import httpx
import pytest

from attnlab.cli import main
from attnlab.errors import AttnlabError
from attnlab.serve.app import create_app
from attnlab.serve.settings import ServeSettings
from attnlab.translate.pytorch import Translator

LINES = ["一二三四五", "", "九八七", "三三", "五六七八九"]
SETTINGS = ServeSettings(max_texts=8, max_chars=40, max_body_bytes=4000, max_beam=4, max_attention_texts=2)


@pytest.fixture(scope="module")
def translator(tiny_run) -> Translator:
    return Translator.load(tiny_run)


@pytest.fixture(scope="module")
def ct2(tiny_run, tmp_path_factory):
    pytest.importorskip("ctranslate2")
    from attnlab.export.ctranslate2 import export_ctranslate2
    from attnlab.translate import load_engine

    return load_engine("ctranslate2", export_ctranslate2(tiny_run, tmp_path_factory.mktemp("ct2") / "model"), threads=1)


@pytest.fixture(scope="module", params=["attnlab", "ctranslate2"])
def engine(request, translator):
    return translator if request.param == "attnlab" else request.getfixturevalue("ct2")


# -- the Python API, on both engines -----------------------------------------------------------------------

def test_nbest_first_is_the_translation_and_scores_are_ordered(engine):
    nbest = engine.translate_hypotheses(LINES, engine.options(beam=2, n_best=2))
    assert [h[0].text if h else "" for h in nbest] == engine.translate(LINES, beam=2)
    assert nbest[1] == []
    for hyps in nbest:
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)


def test_scores_are_the_scored_log_probabilities(engine, translator):
    """A hypothesis's log_prob is what `score` gives its text, and both engines score alike."""
    hyps = [h[0] for h in engine.translate_hypotheses(LINES, engine.options(beam=2)) if h]
    sources = [line for line in LINES if line]
    scored = engine.score(list(zip(sources, [h.text for h in hyps])))
    assert [s.log_prob for s in scored] == pytest.approx([h.log_prob for h in hyps], abs=1e-3)
    reference = translator.score(list(zip(sources, [h.text for h in hyps])))
    assert [s.token_log_probs for s in scored] == [pytest.approx(r.token_log_probs, abs=1e-3) for r in reference]


def test_prefix_starts_every_output(engine):
    out = engine.translate_hypotheses(LINES, engine.options(beam=2, n_best=2), prefixes=["two"] * len(LINES))
    assert all(h.text.startswith("two") for hyps in out for h in hyps) and out[1] == []
    greedy = engine.translate_hypotheses(LINES, engine.options(beam=1))
    own = [(h[0].text.split() or [""])[0] if h else "" for h in greedy]  # each output's first word
    again = engine.translate_hypotheses(LINES, engine.options(beam=1), prefixes=own)
    assert [h[0].text if h else "" for h in again] == engine.translate(LINES, beam=1)


def test_sampling_is_reproducible_by_seed(engine):
    draw = lambda seed: [[h.text for h in hyps] for hyps in engine.translate_hypotheses(
        LINES, engine.options(sample="topk", top_k=5, n_best=3, seed=seed, temperature=2.0))]
    first = draw(1)
    assert draw(1) == first and all(len(hyps) == 3 for i, hyps in enumerate(first) if LINES[i])
    assert any(draw(seed) != first for seed in (2, 3, 4))


def test_length_control(engine):
    pieces = lambda opts: [len(h[0].tokens) for h in engine.translate_hypotheses(LINES, opts) if h]
    assert max(pieces(engine.options(beam=2, max_decoding_length=1))) <= 1
    assert min(pieces(engine.options(beam=2, min_decoding_length=6, max_decoding_length=8))) >= 6
    for hyps in engine.translate_hypotheses(LINES, engine.options(beam=2, min_decoding_length=6,
                                                                  no_repeat_ngram_size=1, max_decoding_length=8)):
        assert all(len(set(h.tokens)) == len(h.tokens) for h in hyps)
    penalised = engine.translate_hypotheses(LINES, engine.options(beam=1, repetition_penalty=5.0,
                                                                  min_decoding_length=6, max_decoding_length=8))
    assert all(len(set(h[0].tokens)) >= 5 for h in penalised if h)


def test_alignment_links_every_target_word(engine):
    for hyps in engine.translate_hypotheses(LINES, engine.options(beam=2, n_best=2), alignment=True):
        for h in hyps:
            assert [j for _, j in h.alignment] == list(range(len(h.target_words)))
            assert all(0 <= i < len(h.source_words) for i, _ in h.alignment)


def test_alignment_layer_and_unsupported_engines(translator, ct2):
    layer0 = translator.translate_hypotheses(["一二三四五"], alignment=True, alignment_layer=0)[0][0]
    every = translator.translate_hypotheses(["一二三四五"], alignment=True)[0][0]
    assert layer0.alignment and layer0.alignment == every.alignment  # the tiny model has one layer
    with pytest.raises(AttnlabError, match="alignment_layer"):
        translator.translate_hypotheses(["一二三"], alignment=True, alignment_layer=3)
    with pytest.raises(AttnlabError, match="alignment_layer can only be the last layer"):
        ct2.translate_hypotheses(["一二三"], alignment=True, alignment_layer=1)


def test_ctranslate2_attention_is_the_last_layers_head_mean(translator, ct2):
    """The same links on both engines: CTranslate2 returns the mean of the last layer's heads, as attnlab
    reads them with alignment_layer = -1."""
    src = translator.encode(["一二三四五", "九八七"])
    outputs = [[5, 6, 7], [8]]
    for mine, theirs in zip(translator.cross_attention(src, outputs, layer=-1), ct2.cross_attention(src, outputs)):
        assert mine[:-1] == pytest.approx(theirs[: len(mine) - 1], abs=1e-4)  # rows of the given pieces


def test_replace_unknowns_copies_the_most_attended_source_word(translator, monkeypatch):
    """An output made to hold <unk> (id 3) gets the source word its row attends to most."""
    from attnlab.decoding import Hypothesis

    monkeypatch.setattr(type(translator), "hypotheses_batch",
                        lambda self, src_ids, opts, prefixes=None: [[Hypothesis([3], -1.0, -1.0, 2)] for _ in src_ids])
    (hyp,), = translator.translate_hypotheses(["五"], replace_unknowns=True)
    assert hyp.text == "五" and hyp.tokens == ["<unk>"]


# -- the command line ----------------------------------------------------------------------------------------

def run_cli(capsys, *argv) -> tuple[int, list[str], str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_cli_nbest_json_lines_scores_and_alignment(tiny_run, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    code, lines, _ = run_cli(capsys, "translate", "--model", str(tiny_run), "--input", str(src), "--beam", "2",
                             "--n-best", "2", "--alignment")
    assert code == 0 and len(lines) == len(LINES)
    rows = [json.loads(line)["hypotheses"] for line in lines]
    assert rows[1] == [] and all(len(r) == 2 and set(r[0]) == {"translation", "score", "log_prob", "alignment"}
                                 for i, r in enumerate(rows) if LINES[i])
    code, plain, _ = run_cli(capsys, "translate", "--model", str(tiny_run), "--input", str(src), "--beam", "2")
    code, scored, _ = run_cli(capsys, "translate", "--model", str(tiny_run), "--input", str(src), "--beam", "2",
                              "--scores", "--alignment")
    assert [line.split("\t")[1] for line in scored] == plain
    assert [line.split("\t")[0] for line in scored] == [f"{r[0]['score']:.4f}" if r else "" for r in rows]
    assert [line.split("\t")[2] for line in scored] == [r[0]["alignment"] if r else "" for r in rows]


def test_cli_decoding_flags(tiny_run, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    base = ["translate", "--model", str(tiny_run), "--input", str(src)]
    _, first, _ = run_cli(capsys, *base, "--sample", "topp", "--top-p", "0.95", "--seed", "7", "--temperature", "1.5")
    _, again, _ = run_cli(capsys, *base, "--sample", "topp", "--top-p", "0.95", "--seed", "7", "--temperature", "1.5")
    assert first == again and len(first) == len(LINES)
    _, prefixed, _ = run_cli(capsys, *base, "--prefix", "nine")
    assert all(line.startswith("nine") for line, src_line in zip(prefixed, LINES) if src_line)
    _, short, _ = run_cli(capsys, *base, "--max-decoding-length", "1", "--no-repeat-ngram-size", "1",
                          "--min-decoding-length", "1", "--repetition-penalty", "1.2")
    assert all(len(line.split()) == 1 for line, src_line in zip(short, LINES) if src_line)


@pytest.mark.parametrize("flags, message", [
    (["--n-best", "5", "--beam", "2"], "--n-best must be between 1 and decode.beam (2), got 5"),
    (["--temperature", "0"], "--temperature must be above 0, got 0.0"),
    (["--top-p", "1.5"], "--top-p must be in (0, 1], got 1.5"),
    (["--alignment", "--alignment-layer", "9"], "--alignment-layer decoder layer 9 out of range"),
])
def test_cli_bad_options_are_one_line(tiny_run, tmp_path, capsys, flags, message):
    src = tmp_path / "in.txt"
    src.write_text("一二三\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "translate", "--model", str(tiny_run), "--input", str(src), *flags)
    assert code == 2 and err.startswith(f"attnlab: error: {message}") and len(err.splitlines()) == 1


def test_cli_score(tiny_run, translator, tmp_path, capsys):
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("一二三\tone two three\n\tnothing\n九八\tnine eight\n", encoding="utf-8")
    code, lines, _ = run_cli(capsys, "score", "--model", str(tiny_run), "--input", str(pairs))
    expected = translator.score([("一二三", "one two three"), ("九八", "nine eight")])
    assert code == 0 and lines == [f"{expected[0].log_prob:.4f}", "nan", f"{expected[1].log_prob:.4f}"]
    code, lines, _ = run_cli(capsys, "score", "--model", str(tiny_run), "--input", str(pairs), "--per-token")
    first = json.loads(lines[0])
    assert first["tokens"][-1] == "</s>" and len(first["tokens"]) == len(first["token_log_probs"])
    assert sum(first["token_log_probs"]) == pytest.approx(first["log_prob"], abs=1e-3)
    pairs.write_text("no tab here\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "score", "--model", str(tiny_run), "--input", str(pairs))
    assert code == 2 and err.strip() == "attnlab: error: input line 1 has no tab: score reads `source TAB target` lines"


# -- the HTTP API --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


async def post(engine, body: dict, run_dir=None) -> httpx.Response:
    app = create_app(engine, SETTINGS, run_dir=run_dir)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://attnlab.test") as c:
            return await c.post("/v1/translate", json=body)


@pytest.mark.anyio
async def test_api_options_match_the_python_api(engine):
    texts = ["一二三四五", "", "九八七"]
    cases = [
        ({"beam": 2, "n_best": 2}, {"beam": 2, "n_best": 2}, {}),
        ({"beam": 2, "scores": True}, {"beam": 2}, {}),
        ({"beam": 2, "prefix": "two"}, {"beam": 2}, {"prefixes": ["two"] * 3}),
        ({"beam": 2, "prefix": ["two", "", "nine"]}, {"beam": 2}, {"prefixes": ["two", "", "nine"]}),
        ({"beam": 2, "alignment": True}, {"beam": 2}, {"alignment": True}),
        ({"sample": "topk", "top_k": 3, "seed": 4, "n_best": 2, "temperature": 1.5},
         {"sample": "topk", "top_k": 3, "seed": 4, "n_best": 2, "temperature": 1.5}, {}),
        ({"beam": 2, "max_decoding_length": 3, "min_decoding_length": 2, "no_repeat_ngram_size": 1,
          "repetition_penalty": 1.5},
         {"beam": 2, "max_decoding_length": 3, "min_decoding_length": 2, "no_repeat_ngram_size": 1,
          "repetition_penalty": 1.5}, {}),
    ]
    for body, options, extra in cases:
        r = await post(engine, {"texts": texts, **body})
        assert r.status_code == 200, (body, r.text)
        expected = engine.translate_hypotheses(texts, engine.options(**options), **extra)
        got = r.json()["hypotheses"]
        assert [[h["translation"] for h in hyps] for hyps in got] == [[t.text for t in ts] for ts in expected], body
        log_probs = [[round(t.log_prob, 4) for t in ts] for ts in expected]
        assert [[h["log_prob"] for h in hyps] for hyps in got] == log_probs
        assert r.json()["translations"] == [ts[0].text if ts else "" for ts in expected]
        if body.get("alignment"):
            assert got[0][0]["alignment"] and got[0][0]["source_words"] and got[0][0]["target_words"]


@pytest.mark.anyio
async def test_api_plain_requests_have_no_hypotheses(translator):
    r = await post(translator, {"texts": ["一二三"], "beam": 2})
    assert r.status_code == 200 and r.json()["hypotheses"] is None


@pytest.mark.anyio
async def test_api_attention_follows_the_options(translator):
    r = await post(translator, {"texts": ["一二三四五"], "beam": 2, "n_best": 2, "prefix": "nine",
                                "attention": True, "alignment": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["translations"][0].startswith("nine")
    assert body["translations"][0] == body["hypotheses"][0][0]["translation"]
    assert body["attention"][0]["target_tokens"][0] == "▁nine"


@pytest.mark.anyio
@pytest.mark.parametrize("body, message", [
    ({"n_best": 4, "beam": 2}, "n_best: must be between 1 and decode.beam (2), got 4"),
    ({"alignment_layer": 5, "alignment": True}, "alignment_layer: must be below the model's 1 decoder layers, got 5"),
    ({"prefix": ["a", "b"]}, "prefix: 2 prefixes for 1 texts"),
    ({"sample": "beam"}, "sample: Input should be 'topk' or 'topp'"),
    ({"max_decoding_length": 100000}, "max_decoding_length: Input should be less than or equal to 512"),
    ({"temperature": 0}, "temperature: Input should be greater than 0"),
])
async def test_api_bad_options_are_422_naming_the_field(translator, body, message):
    r = await post(translator, {"texts": ["一二三"], **body})
    assert r.status_code == 422 and r.json()["error"] == message


@pytest.mark.anyio
async def test_api_alignment_needs_an_engine_that_has_it(translator, tiny_run, tmp_path):
    from attnlab.export.onnx import export_onnx
    from attnlab.translate import load_engine

    pytest.importorskip("onnxruntime")
    onnx = load_engine("onnx", export_onnx(tiny_run, tmp_path / "onnx"), threads=1)
    r = await post(onnx, {"texts": ["一二三"], "alignment": True})
    assert r.status_code == 422 and r.json()["error"].startswith("alignment: this engine gives no attention")
    r = await post(onnx, {"texts": ["一二三"], "beam": 2, "n_best": 2, "prefix": "two"})
    assert r.status_code == 200 and all(h["translation"].startswith("two") for h in r.json()["hypotheses"][0])


def test_openapi_documents_every_option(translator):
    schema = create_app(translator, SETTINGS).openapi()
    request = next(v for k, v in schema["components"]["schemas"].items() if k.endswith("TranslateRequest"))
    for name in ("n_best", "scores", "prefix", "alignment", "alignment_layer", "replace_unknowns", "sample", "top_k",
                 "top_p", "temperature", "seed", "max_decoding_length", "min_decoding_length", "no_repeat_ngram_size",
                 "repetition_penalty"):
        assert request["properties"][name].get("description"), name
    assert "hypotheses" in schema["components"]["schemas"]["TranslateResponse"]["properties"]
