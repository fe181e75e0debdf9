"""The HTTP API through an ASGI client (no sockets): translations equal the Translator's own, attention
shapes and values match `Translator.attention`, concurrent requests share decoder calls, and each kind
of bad input gets its 4xx with a JSON error naming the problem. Plus the batcher on a fake translator
and the `serve` subcommand's flag errors."""

import argparse
import asyncio
import json
import socket
import time
from pathlib import Path

import httpx
import pytest
import torch

from attnlab.cli import main
from attnlab.cli.serve import cmd_serve, listen, register
from attnlab.config import load_config
from attnlab.errors import AttnlabError
from attnlab.serve.app import create_app
from attnlab.serve.batcher import Batcher, QueueFullError
from attnlab.serve.settings import ServeSettings
from attnlab.train import train
from attnlab.translate.pytorch import Translator
from conftest import number_pairs, write_tiny_corpus

pytestmark = pytest.mark.anyio
SETTINGS = ServeSettings(max_texts=8, max_chars=40, max_body_bytes=4000, max_beam=4, max_attention_texts=2)


@pytest.fixture(scope="module")
def anyio_backend():
    return "asyncio"


def train_tiny(folder: Path) -> Path:
    """The tiny digits model of conftest (zh -> en), trained in a few seconds."""
    train(load_config(write_tiny_corpus(folder)["config"]), folder / "run")
    return folder / "run"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def translator(run_dir) -> Translator:
    return Translator.load(run_dir)


async def open_client(app):
    """An httpx client on the app itself, with the app's startup and shutdown around it."""
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://attnlab.test")
    return client, lifespan


@pytest.fixture
def app(translator, run_dir):
    return create_app(translator, SETTINGS, run_dir=run_dir)


@pytest.fixture
async def client(app):
    client, lifespan = await open_client(app)
    yield client
    await client.aclose()
    await lifespan.__aexit__(None, None, None)


# -- valid requests --------------------------------------------------------------------------------------

async def test_one_text(client, translator):
    r = await client.post("/v1/translate", json={"texts": ["一二三"], "beam": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["translations"] == translator.translate(["一二三"], beam=2)
    assert body["model"] == {"name": "run", "direction": "zh-en"}
    assert body["attention"] is None and body["timing_ms"] >= 0


async def test_batch_keeps_order_and_matches_the_translator(client, translator):
    texts = ["五六七八九", "一", "", "三三", "九八七", "二四六八"]
    r = await client.post("/v1/translate", json={"texts": texts, "beam": 1})
    assert r.status_code == 200, r.text
    assert r.json()["translations"] == translator.translate(texts, beam=1)
    assert r.json()["translations"][2] == ""


async def test_default_beam_is_the_models(client, translator):
    r = await client.post("/v1/translate", json={"texts": ["七七八"]})
    assert r.json()["translations"] == translator.translate(["七七八"], beam=translator.cfg.decode.beam)


async def test_attention_shapes_and_values(client, translator):
    r = await client.post("/v1/translate", json={"texts": ["一二三四", ""], "beam": 2, "attention": True,
                                                 "attention_layers": True})
    assert r.status_code == 200, r.text
    body = r.json()
    first, empty = body["attention"]
    maps = translator.attention("一二三四", beam=2)
    assert body["translations"] == [maps.translation, ""]
    assert first["source_tokens"] == maps.source and first["target_tokens"] == maps.target
    n_layers, _, t, s = maps.cross.shape  # (L,H,T,S)
    cross, layers = torch.tensor(first["cross"]), torch.tensor(first["cross_layers"])
    assert cross.shape == (t, s) and layers.shape == (n_layers, t, s)
    torch.testing.assert_close(cross, maps.cross.mean(dim=(0, 1)), atol=1e-4, rtol=0)
    torch.testing.assert_close(layers, maps.cross.mean(dim=1), atol=1e-4, rtol=0)
    torch.testing.assert_close(cross.sum(dim=1), torch.ones(t), atol=1e-3, rtol=0)  # rows are distributions
    assert empty == {"source_tokens": [], "target_tokens": [], "cross": [], "cross_layers": []}


async def test_attention_without_layers_leaves_them_out(client):
    r = await client.post("/v1/translate", json={"texts": ["五"], "attention": True})
    assert r.json()["attention"][0]["cross_layers"] is None


async def test_concurrent_requests_share_decoder_calls(translator, run_dir):
    settings = ServeSettings(batch_window_ms=50, max_batch=32)
    app = create_app(translator, settings, run_dir=run_dir)
    client, lifespan = await open_client(app)
    try:
        texts = [t for t, _ in number_pairs(12, 7)]
        replies = await asyncio.gather(*(client.post("/v1/translate", json={"texts": [t], "beam": 1}) for t in texts))
        health = (await client.get("/v1/health")).json()
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    assert [r.json()["translations"][0] for r in replies] == translator.translate(texts, beam=1)
    assert health["sentences"] == 12 and health["batches"] < 12 and health["largest_batch"] > 1


async def test_health_model_and_schema(client, run_dir):
    health = (await client.get("/v1/health")).json()
    assert health["status"] == "ok" and health["waiting"] == 0
    info = (await client.get("/v1/model")).json()
    assert info["direction"] == "zh-en" and info["source_language"] == "zh" and info["target_language"] == "en"
    assert info["sizes"]["d_model"] == 32 and info["sizes"]["parameters"] > 0
    assert info["vocabulary"]["size"] == 40
    assert info["scores"] == json.loads((run_dir / "scores.json").read_text())
    assert info["limits"]["max_texts"] == SETTINGS.max_texts
    schema = (await client.get("/openapi.json")).json()
    assert {"/v1/translate", "/v1/health", "/v1/model"} <= set(schema["paths"])
    post = schema["paths"]["/v1/translate"]["post"]
    for code in ("400", "413", "415", "422", "503"):
        assert post["responses"][code]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    texts = schema["components"]["schemas"]["TranslateRequest"]["properties"]["texts"]
    assert texts["maxItems"] == SETTINGS.max_texts and texts["items"]["maxLength"] == SETTINGS.max_chars


async def test_the_page_and_its_files(client):
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert '<script src="/static/app.js"' in r.text and "http" not in r.text.replace("/static/", "")
    for name in ("app.js", "style.css"):
        assert (await client.get(f"/static/{name}")).status_code == 200


# -- bad input ---------------------------------------------------------------------------------------------

JSON = "application/json"
BAD = [  # (body, content type, status, words the error must contain)
    ('{"texts": [', JSON, 400, "malformed JSON"),
    ('{"texts": ["a"]}', "text/plain", 415, "must be JSON"),
    ('{"texts": ["a"]}', None, 415, "must be JSON"),
    ("", JSON, 422, "body"),
    ("[]", JSON, 422, "body"),
    ("null", JSON, 422, "body"),
    ('{"texts": []}', JSON, 422, "texts: List should have at least 1 item"),
    ('{"texts": "一二"}', JSON, 422, "texts: Input should be a valid list"),
    ('{"texts": [1]}', JSON, 422, "texts.0: Input should be a valid string"),
    ('{"texts": ["一", null]}', JSON, 422, "texts.1"),
    ('{"texts": ["一"], "beam": "2"}', JSON, 422, "beam: Input should be a valid integer"),
    ('{"texts": ["一"], "beam": 2.5}', JSON, 422, "beam"),
    ('{"texts": ["一"], "beam": 0}', JSON, 422, "beam: Input should be greater than or equal to 1"),
    ('{"texts": ["一"], "beam": 5}', JSON, 422, "beam: Input should be less than or equal to 4"),
    ('{"texts": ["一"], "attention": "yes"}', JSON, 422, "attention: Input should be a valid boolean"),
    ('{"text": ["一"]}', JSON, 422, "texts: Field required"),
    ('{"texts": ["一"], "bem": 2}', JSON, 422, "bem: Extra inputs are not permitted"),
    (json.dumps({"texts": ["一" * 41]}), JSON, 422, "texts.0: String should have at most 40 characters"),
    (json.dumps({"texts": ["一"] * 9}), JSON, 422, "texts: List should have at most 8 items"),
    (json.dumps({"texts": ["一"] * 3, "attention": True}), JSON, 422, "at most 2 texts per request with attention"),
    ('{"texts": ["一"]' + " " * 5000 + "}", JSON, 413, "too large: 5018 bytes"),
]


@pytest.mark.parametrize("body, content_type, status, words", BAD)
async def test_bad_input_gets_a_json_error(client, body, content_type, status, words):
    headers = {"content-type": content_type} if content_type else {}
    r = await client.post("/v1/translate", content=body.encode(), headers=headers)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


async def test_streamed_body_over_the_limit_is_cut_off(client):
    async def chunks():  # no Content-Length: the limit is counted as the body arrives
        yield b'{"texts": ["'
        for _ in range(10):
            yield "一".encode() * 200
        yield b'"]}'

    r = await client.post("/v1/translate", content=chunks(), headers={"content-type": JSON})
    assert r.status_code == 413 and "limit is 4000 bytes" in r.json()["error"]


@pytest.mark.parametrize("method, path, status", [("GET", "/v1/nothing", 404), ("DELETE", "/v1/translate", 405),
                                                  ("GET", "/v1/translate", 405)])
async def test_unknown_routes_get_json_errors(client, method, path, status):
    r = await client.request(method, path)
    assert r.status_code == status and path in r.json()["error"]


async def test_queue_full_is_503(app, client, monkeypatch):
    async def full(*args, **kwargs):
        raise QueueFullError("5000 sentences are waiting")

    monkeypatch.setattr(app.state.batcher, "translate", full)
    r = await client.post("/v1/translate", json={"texts": ["一"]})
    assert r.status_code == 503 and "server busy" in r.json()["error"]


# -- the batcher on a fake translator -------------------------------------------------------------------------

class FakeTranslator:
    """Upper-cases; records the size of every call; fails on the text 'boom'."""

    def __init__(self, seconds: float = 0.02) -> None:
        self.calls: list[int] = []
        self.seconds = seconds

    def translate(self, lines, beam=None):
        self.calls.append(len(lines))
        time.sleep(self.seconds)  # runs in the decoder thread, as a model would
        if "boom" in lines:
            raise RuntimeError("boom")
        return [f"{line.upper()}/{beam}" for line in lines]

    def attention(self, line, beam=None):
        raise AssertionError("not used")


async def run_clients(batcher: Batcher, n: int) -> list[str]:
    await batcher.start()
    try:
        results = await asyncio.gather(*(batcher.translate([f"s{i}"], beam=1) for i in range(n)))
    finally:
        await batcher.stop()
    return [r[0] for r in results]


@pytest.mark.parametrize("max_batch, most", [(4, 4), (1, 1), (64, 20)])
async def test_batcher_gathers_up_to_max_batch(max_batch, most):
    fake = FakeTranslator()
    results = await run_clients(Batcher(fake, max_batch=max_batch, window_ms=30, max_queue=100), 20)
    assert results == [f"S{i}/1" for i in range(20)]  # each request gets its own answer
    assert max(fake.calls) == most and sum(fake.calls) == 20


async def test_a_lone_client_never_waits_for_the_window():
    """Three calls in a row end in well under one window: none waited for it (a wait alone would take 20 s),
    however slowly a busy machine runs the three calls themselves."""
    fake = FakeTranslator(seconds=0)
    batcher = Batcher(fake, max_batch=32, window_ms=20_000, max_queue=100)
    await batcher.start()
    try:
        started = time.monotonic()
        for i in range(3):
            assert await batcher.translate([f"s{i}"]) == [f"S{i}/None"]
        elapsed = time.monotonic() - started
    finally:
        await batcher.stop()
    assert elapsed < 10 and fake.calls == [1, 1, 1]


async def test_clients_answered_together_stay_in_one_batch():
    """8 clients in a loop, each sending again 0-14 ms after its answer: they do not split into small batches."""
    fake = FakeTranslator(seconds=0.03)
    batcher = Batcher(fake, max_batch=32, window_ms=2000, max_queue=100)

    async def client(i: int) -> None:
        for _ in range(4):
            await batcher.translate([f"c{i}"])
            await asyncio.sleep(0.002 * i)

    await batcher.start()
    try:
        await asyncio.gather(*(client(i) for i in range(8)))
    finally:
        await batcher.stop()
    assert fake.calls == [8, 8, 8, 8]


async def test_batcher_keeps_beams_apart():
    fake = FakeTranslator()
    batcher = Batcher(fake, max_batch=8, window_ms=30, max_queue=100)
    await batcher.start()
    try:
        a, b = await asyncio.gather(batcher.translate(["x", "y"], beam=1), batcher.translate(["z"], beam=3))
    finally:
        await batcher.stop()
    assert a == ["X/1", "Y/1"] and b == ["Z/3"] and sorted(fake.calls) == [1, 2]


async def test_batcher_failure_reaches_the_callers_and_the_worker_goes_on():
    fake = FakeTranslator()
    batcher = Batcher(fake, max_batch=8, window_ms=1, max_queue=100)
    await batcher.start()
    try:
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.translate(["boom"])
        assert await batcher.translate(["ok"], beam=2) == ["OK/2"]
    finally:
        await batcher.stop()


async def test_batcher_queue_limit():
    batcher = Batcher(FakeTranslator(seconds=0.2), max_batch=1, window_ms=0, max_queue=3)
    await batcher.start()
    try:
        first = asyncio.ensure_future(batcher.translate(["a", "b", "c"]))
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError):
            await batcher.translate(["d", "e"])
        first.cancel()
    finally:
        await batcher.stop()


# -- the serve subcommand ------------------------------------------------------------------------------------

def serve_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="attnlab")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["serve", *argv])


def test_every_serve_flag_has_help():
    parser = argparse.ArgumentParser(prog="attnlab")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    actions = [a for a in sub.choices["serve"]._actions if a.dest != "help"]
    assert actions and all(a.help for a in actions)


@pytest.mark.parametrize("argv, words", [
    (["--max-batch", "0"], "--max-batch must be at least 1"),
    (["--max-texts", "0"], "--max-texts must be at least 1"),
    (["--port", "70000"], "--port must be between 0 and 65535"),
    (["--batch-window-ms", "-1"], "--batch-window-ms must be 0 or more"),
    (["--threads", "0"], "--threads must be at least 1"),
])
def test_serve_flag_errors(tmp_path, capsys, argv, words):
    """Checked before the model loads; the error names the flag (ServeSettings' field, shown as the flag)."""
    assert main(["serve", "--model", str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err.startswith(f"attnlab: error: {words}")


def test_serve_missing_model(tmp_path):
    with pytest.raises(AttnlabError, match="model directory not found"):
        cmd_serve(serve_args("--model", str(tmp_path / "nothing"), "--port", "0"))


def test_taken_port_is_one_clear_error():
    taken = listen("127.0.0.1", 0)
    taken.listen()
    try:
        with pytest.raises(AttnlabError, match="cannot listen on 127.0.0.1"):
            listen("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()


def test_listen_gives_a_bound_loopback_socket():
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1" and sock.type == socket.SOCK_STREAM
    finally:
        sock.close()
