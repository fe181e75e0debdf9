"""The page in a real browser: uvicorn on loopback, Debian's headless Chromium driven by Playwright.

Types a Chinese sentence, waits for the translation, checks the heatmap (one cell per target × source
piece, the axes labelled with the pieces the API returns, hovering a target piece lights up source pieces),
the n-best list and the word-alignment links (as the API gives them, for the hypothesis clicked), and that
column headers of multi-character pieces stay in their own row and column; checks that the page fetched
nothing but its own server, and saves screenshots to artifacts/.

Needs /usr/bin/chromium (`apt-get install chromium`) and the `playwright` package; Playwright's own
browser downloads are never used.
"""

import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from attnlab.cli.serve import listen
from attnlab.serve.app import create_app
from attnlab.serve.settings import ServeSettings
from attnlab.translate.pytorch import Translator
from test_serve import train_tiny

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SENTENCE = "一二三四五"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed ({CHROMIUM} is missing; apt-get install chromium)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def server(run_dir):
    """The served tiny model on 127.0.0.1 and a free port, in a thread; yields its base URL."""
    yield from serve(Translator.load(run_dir), run_dir)


@pytest.fixture(scope="module")
def ct2_server(run_dir, tmp_path_factory):
    """The tiny model exported to CTranslate2, served as `server` is."""
    pytest.importorskip("ctranslate2")
    from attnlab.export.ctranslate2 import export_ctranslate2
    from attnlab.translate import load_engine

    engine = load_engine("ctranslate2", export_ctranslate2(run_dir, tmp_path_factory.mktemp("ct2") / "m"), threads=1)
    yield from serve(engine, run_dir)


def serve(engine, run_dir):
    """Serve `engine` with uvicorn in a thread on a free loopback port; yield the base URL, then stop."""
    import uvicorn

    app = create_app(engine, ServeSettings(port=0), run_dir=run_dir)
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser(chromium_env):
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed: "
                                   "pip install -e '.[test]' (make setup does)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, env=chromium_env)
        yield browser
        browser.close()


def test_translation_and_heatmap_in_the_browser(server, browser):
    expected = httpx.post(f"{server}/v1/translate", json={"texts": [SENTENCE], "attention": True}, timeout=20).json()
    maps = expected["attention"][0]
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.set_default_timeout(20_000)
    hosts, errors = set(), []
    page.on("request", lambda request: hosts.add(urlsplit(request.url).netloc))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(server + "/")
    page.wait_for_selector("#direction:has-text('→')")  # selectors, not wait_for_function: the page's CSP bars eval
    assert page.text_content("#direction") == "zh → en"
    page.fill("#source", SENTENCE)
    page.click("#go")
    page.wait_for_selector("#heatmap .cell")
    page.wait_for_selector("#status:text-matches('ms$')")

    assert page.text_content("#translation") == expected["translations"][0]
    assert page.locator("#heatmap .cell").count() == len(maps["target_tokens"]) * len(maps["source_tokens"])
    assert page.locator("#heatmap .src-label").all_text_contents() == maps["source_tokens"]
    assert page.locator("#heatmap .tgt-label").all_text_contents() == maps["target_tokens"]

    page.hover("#heatmap .tgt-label >> nth=0")
    assert page.locator("#heatmap .tgt-label.active").count() == 1
    assert page.locator("#heatmap .src-label.attended").count() >= 1

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve_page.png"), full_page=True)
    assert hosts == {urlsplit(server).netloc}, f"the page fetched from elsewhere: {hosts}"
    assert not errors, errors
    page.close()


def test_nbest_and_alignment_in_the_browser(server, browser):
    body = {"texts": [SENTENCE], "beam": 3, "n_best": 3, "scores": True, "alignment": True, "attention": True}
    expected = httpx.post(f"{server}/v1/translate", json=body, timeout=20).json()["hypotheses"][0]
    page, errors = _ask_for_hypotheses(browser, server, beam=3, height=900)
    page.wait_for_selector("#hypotheses li")
    page.wait_for_selector("#status:text-matches('ms$')")

    assert page.locator("#hypotheses .hyp-text").all_text_contents() == [h["translation"] for h in expected]
    assert page.locator("#hypotheses li.selected").count() == 1
    for i, hyp in enumerate(expected):
        page.click(f"#hypotheses li >> nth={i}")
        assert page.text_content("#alignment-pairs") == hyp["alignment"]
        assert page.locator("#alignment line.link").count() == len(hyp["alignment"].split())
        assert page.locator("#alignment .src-word").all_text_contents() == hyp["source_words"]
        assert page.locator("#alignment .tgt-word").all_text_contents() == hyp["target_words"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve_page_nbest.png"), full_page=True)
    assert not errors, errors
    page.close()


def test_column_headers_do_not_overlap(server, browser):
    """Multi-character pieces (图书馆, ▁library) as column headers, more than the page is wide: each stays
    above the first row of cells and within its own column."""
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(server + "/")
    page.wait_for_selector("#direction:has-text('→')")
    source = ["▁我们", "喜欢", "去", "图书馆", "看书", "。", "▁the", "▁library", "▁图书馆里", "书"] * 2  # wider than the page
    target = ["▁I", "▁like", "▁the", "▁library", ".", "<eos>"]
    page.evaluate("""([source, target]) => {
        const row = source.map((_, s) => 1 / source.length);
        result = {source_tokens: source, target_tokens: target, cross: target.map(() => row),
                  cross_layers: [target.map(() => row)]};
        document.getElementById("layer").value = "mean";
        draw();
    }""", [source, target])
    labels = [page.locator("#heatmap .src-label").nth(s).bounding_box() for s in range(len(source))]
    first_cells = [page.locator("#heatmap .cell").nth(s).bounding_box() for s in range(len(source))]
    for label, cell in zip(labels, first_cells):
        assert label["y"] + label["height"] <= cell["y"] + 0.5, (label, cell)  # above the first row
        assert cell["x"] - 1 <= label["x"] and label["x"] + label["width"] <= cell["x"] + cell["width"] + 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve_page_headers.png"), full_page=True)
    page.close()


def test_page_on_the_ctranslate2_engine(ct2_server, browser):
    """CTranslate2 gives no attention maps: the page hides the heatmap and still shows n-best and links."""
    body = {"texts": [SENTENCE], "beam": 2, "n_best": 2, "scores": True, "alignment": True}
    expected = httpx.post(f"{ct2_server}/v1/translate", json=body, timeout=20).json()["hypotheses"][0]
    page, errors = _ask_for_hypotheses(browser, ct2_server, beam=2, height=800)
    page.wait_for_selector("#status:text-matches('ms$')")
    assert page.locator("#hypotheses .hyp-text").all_text_contents() == [h["translation"] for h in expected]
    assert page.text_content("#alignment-pairs") == expected[0]["alignment"]
    assert page.is_hidden("#attention-section") and page.locator("#heatmap .cell").count() == 0
    assert not errors, errors
    page.close()


def _ask_for_hypotheses(browser, server: str, beam: int, height: int):
    """Open the page, translate SENTENCE with `beam` beams and as many hypotheses; the page and its errors."""
    page = browser.new_page(viewport={"width": 1000, "height": height})
    page.set_default_timeout(20_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server + "/")
    page.wait_for_selector("#direction:has-text('→')")
    page.fill("#source", SENTENCE)
    page.fill("#beam", str(beam))
    page.fill("#nbest", str(beam))
    page.click("#go")
    return page, errors
