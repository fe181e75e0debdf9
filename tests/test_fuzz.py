"""Input fuzzing with Hypothesis: arbitrary Unicode (control characters, emoji, right-to-left text,
combining marks, lone surrogates from a bad decoder, only whitespace, mixed scripts, 100k-character lines)
through the tokenizer, `Translator.translate`, `attnlab translate` on a file and on stdin, and the HTTP
API. Never an exception, always one output line per input line, bounded time per line.

The slow variants (`make test-reliability`) run ten times as many examples."""

import asyncio
import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnlab.cli import main
from attnlab.serve.app import create_app
from attnlab.serve.settings import ServeSettings
from attnlab.translate.pytorch import Translator
from test_serve import train_tiny

LINE_BREAKS = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]  # str.splitlines' set
ODD = [*LINE_BREAKS, "\x00", "\x07", "\x1b[31m", "\t", " ", "\u3000", "\u00a0", "\ufeff", "\u200b", "\u200d",
       "\u202e", "\u200f", "\u0301", "\u0308" * 5, "🙂", "👨‍👩‍👧", "🇨🇳", "\U0010ffff", "\ud800", "\udfff", "\ufffd",
       "ש", "עברית", "العربية", "一二三", "龍", "e\u0301", "Ａ", "ﬁ", "<eos>", "<unk>", "▁"]
# Bound on the work per line, in CPU seconds of this process (time.process_time, all threads), not wall-clock
# seconds: other work on a busy machine slows the clock, not the work. A line takes ~0.05 s here; what the
# bound is for, an input that is not cut to decode.max_input_tokens or an output that is not capped, takes
# minutes on a 100k-character line.
PER_LINE_S = 5.0


def texts() -> st.SearchStrategy[str]:
    """Short strings of any code point (surrogates included) mixed with the odd pieces above."""
    piece = st.one_of(st.characters(codec=None, categories=None, exclude_categories=()), st.sampled_from(ODD),
                      st.text(max_size=5))
    return st.lists(piece, max_size=30).map("".join)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def translator(run_dir) -> Translator:
    return Translator.load(run_dir)


def check_translate(translator: Translator, lines: list[str], beam: int) -> None:
    started = time.process_time()
    out = translator.translate(lines, beam=beam)
    seconds = time.process_time() - started
    assert len(out) == len(lines)
    assert all(isinstance(t, str) and len(t.splitlines()) <= 1 and "\n" not in t for t in out), out
    assert "\n".join(out).count("\n") == len(lines) - 1
    assert seconds <= PER_LINE_S * max(len(lines), 1), seconds


# Counts only: derandomisation, deadline and database come from the profile (tests/conftest.py), so `make test`
# tries the same examples every run and `make test-reliability` a fresh random search.
FAST = settings(max_examples=60)
MANY = settings(max_examples=600)


# -- tokenizer and Translator ---------------------------------------------------------------------------

def test_tokenizer_takes_any_text(translator):
    @FAST
    @given(st.lists(texts(), min_size=1, max_size=6))
    def check(lines):
        tok = translator.tokenizer
        ids = tok.encode_src(lines)
        assert len(ids) == len(lines)
        assert all(0 <= i < tok.vocab_size for seq in ids for i in seq)
        assert len(tok.decode_tgt(ids)) == len(lines)
        assert len(tok.encode_tgt(lines)) == len(lines)

    check()


@pytest.mark.parametrize("examples", [pytest.param(FAST, id="fast"), pytest.param(MANY, id="many", marks=pytest.mark.slow)])
def test_translator_one_line_per_line(translator, examples):
    @examples
    @given(st.lists(texts(), min_size=1, max_size=6), st.sampled_from([1, 2]))
    def check(lines, beam):
        check_translate(translator, lines, beam)

    check()


LONG = {
    "100k Chinese characters": ("一二三" * 33_334)[:100_000],
    "100k ASCII letters, no spaces": "a" * 100_000,
    "25k English words": "one two " * 12_500,
    "100k emoji": "🙂" * 100_000,
    "100k combining marks": "\u0301" * 100_000,
    "100k spaces": " " * 100_000,
    "100k line separators": "\u2028" * 100_000,
    "100k lone surrogates": "\ud800" * 100_000,
    "mixed scripts": ("龍 ש العربية e\u0301 🇨🇳 \u202e" * 5_000)[:100_000],
}


@pytest.mark.parametrize("name", list(LONG))
def test_100k_character_lines(translator, name):
    check_translate(translator, [LONG[name], "一二", ""], beam=2)


@pytest.mark.parametrize("line", ["", " ", "\t\u3000 ", "\u2028", "\x0b\x0c", "\u200b", "\ufeff"])
def test_lines_with_nothing_to_translate_stay_empty(translator, line):
    assert translator.translate([line, "一"], beam=1)[0] == ""


# -- the CLI: a file and stdin ------------------------------------------------------------------------------

def input_lines(data: bytes) -> int:
    """Lines as `translate` reads them: ended by b"\\n", a last line without one counting too."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def cli_translate(run_dir: Path, path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["translate", "--model", str(run_dir), "--input", str(path), "--beam", "1"])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("examples", [pytest.param(settings(FAST, max_examples=30), id="fast"),
                                      pytest.param(MANY, id="many", marks=pytest.mark.slow)])
def test_cli_file_one_line_per_line(run_dir, tmp_path, examples):
    path = tmp_path / "in.txt"

    @examples
    @given(st.lists(texts(), max_size=8), st.booleans())
    def check(lines, final_newline):
        # a file holds UTF-8 bytes: lone surrogates cannot be in it (test_cli covers invalid UTF-8)
        data = "\n".join(lines).encode("utf-8", "replace") + (b"\n" if final_newline and lines else b"")
        path.write_bytes(data)
        started = time.process_time()
        code, out, err = cli_translate(run_dir, path)
        assert code == 0, err
        n = input_lines(data)
        assert out.count("\n") == n and len(out.splitlines()) == n, (data, out)
        assert time.process_time() - started <= PER_LINE_S * max(n, 1) + 5  # + loading the model

    check()


def test_cli_stdin_in_a_subprocess(run_dir):
    """The real stdin path: odd bytes, CRLF, a 100k-character line, no final newline."""
    lines = [*ODD, *LONG.values(), "a\r", "", "一\r\n二"]
    data = "\n".join(lines).encode("utf-8", "replace")
    proc = subprocess.run([sys.executable, "-m", "attnlab", "translate", "--model", str(run_dir), "--beam", "1"],
                          input=data, capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    out = proc.stdout.decode("utf-8")
    assert out.count("\n") == input_lines(data) and len(out.splitlines()) == input_lines(data)
    assert b"Traceback" not in proc.stderr


# -- the HTTP API --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(translator, run_dir):
    """(event loop, client) on the app with the default limits; the loop runs while a request is awaited."""
    loop = asyncio.new_event_loop()
    app = create_app(translator, ServeSettings(), run_dir=run_dir)
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://attnlab.test", timeout=60)
    yield loop, client
    loop.run_until_complete(client.aclose())
    loop.run_until_complete(lifespan.__aexit__(None, None, None))
    loop.close()


def post(api, body: bytes) -> httpx.Response:
    loop, client = api
    return loop.run_until_complete(client.post("/v1/translate", content=body,
                                               headers={"content-type": "application/json"}))


@pytest.mark.parametrize("examples", [pytest.param(settings(FAST, max_examples=40), id="fast"),
                                      pytest.param(MANY, id="many", marks=pytest.mark.slow)])
def test_api_one_translation_per_text(api, examples):
    @examples
    @given(st.lists(texts(), min_size=1, max_size=8), st.sampled_from([None, 1, 2]), st.booleans(), st.booleans())
    def check(lines, beam, attention, ascii_json):
        body = {"texts": lines, **({"beam": beam} if beam else {}), "attention": attention}
        raw = json.dumps(body, ensure_ascii=ascii_json).encode("utf-8", "surrogatepass" if not ascii_json else "strict")
        started = time.process_time()
        r = post(api, raw)
        seconds = time.process_time() - started
        assert r.status_code != 500, r.text
        if attention and len(lines) > ServeSettings().max_attention_texts:
            assert r.status_code == 422 and "with attention" in r.json()["error"]
            return
        if not ascii_json and any("\ud800" <= c <= "\udfff" for t in lines for c in t):
            # raw surrogate bytes are not UTF-8, so no JSON string: a 4xx naming the text ("\ud800" escapes
            # in ASCII JSON, which JavaScript writes for broken strings, are translated like U+FFFD)
            assert r.status_code == 422 and "unicode string" in r.json()["error"], r.text
            return
        assert r.status_code == 200, r.text
        out = r.json()["translations"]
        assert len(out) == len(lines) and all(len(t.splitlines()) <= 1 for t in out)
        if attention:
            assert len(r.json()["attention"]) == len(lines)
        assert seconds <= PER_LINE_S * len(lines)

    check()


def test_api_100k_character_text(translator, run_dir):
    async def go():
        limits = ServeSettings(max_chars=100_000, max_body_bytes=2_000_000)
        app = create_app(translator, limits, run_dir=run_dir)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=120) as c:
                over = await c.post("/v1/translate", json={"texts": ["一" * 100_001]})
                started = time.process_time()
                ok = await c.post("/v1/translate", json={"texts": list(LONG.values())[:4]})
                return over, ok, time.process_time() - started

    over, ok, seconds = asyncio.run(go())
    assert over.status_code == 422 and "at most 100000 characters" in over.json()["error"]
    assert ok.status_code == 200 and len(ok.json()["translations"]) == 4 and seconds <= 4 * PER_LINE_S
