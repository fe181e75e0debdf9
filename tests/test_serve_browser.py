"""The page in a real browser: uvicorn on loopback, Debian's headless Chromium driven by Playwright.

Types a Chinese sentence, waits for the translation, checks the heatmap (one cell per target × source
piece, the axes labelled with the pieces the API returns, hovering a target piece lights up source pieces),
checks that the page fetched nothing but its own server, and saves a screenshot to artifacts/.

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
from attnlab.translator import Translator
from test_serve import train_tiny

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SENTENCE = "一二三四五"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"Debian's Chromium is not installed ({CHROMIUM} is missing; apt-get install chromium)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The served tiny model on 127.0.0.1 and a free port, in a thread; yields its base URL."""
    import uvicorn

    run_dir = train_tiny(tmp_path_factory.mktemp("browser"))
    app = create_app(Translator.load(run_dir), ServeSettings(port=0), run_dir=run_dir)
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
    page.wait_for_function("document.getElementById('direction').textContent.includes('en')")
    assert page.text_content("#direction") == "zh → en"
    page.fill("#source", SENTENCE)
    page.click("#go")
    page.wait_for_selector("#heatmap .cell")
    page.wait_for_function("document.getElementById('status').textContent.endsWith('ms')")

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

