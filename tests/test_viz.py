"""attnlab viz: every picture is drawn from a tiny trained run (or planted vectors), has the expected pixel
size, and holds the numbers it claims: the model's attention weights, the positional formula, the
variance theory of the √d scaling, the PCA of the vectors, the metrics log. Chinese renders without
missing glyphs."""

import base64
import json
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from attnlab.cli import build_parser, main
from attnlab.errors import AttnlabError
from attnlab.translate.pytorch import Translator
from attnlab.word2vec.vectors import WordVectors
from attnlab.viz.attention import attention_figure, plot_attention
from attnlab.viz.embeddings import choose, plot_embeddings, project
from attnlab.viz.figure import cjk, new_figure
from attnlab.viz.positions import plot_positions
from attnlab.viz.scaling import scaling_data
from attnlab.viz.training import plot_training, read_metrics

SENTENCE = "一二三四"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def maps(tiny_run):
    return Translator.load(tiny_run).attention(SENTENCE)


# -- fonts --------------------------------------------------------------------------------------

def _render(text: str, family) -> list[str]:
    """Draw `text` into a PNG; return the warnings matplotlib raised while doing it."""
    fig = new_figure(3, 1)
    fig.text(0.1, 0.4, text, fontfamily=family, fontsize=14)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(__import__("io").BytesIO(), format="png")
    return [str(w.message) for w in caught]


def test_chinese_renders_without_missing_glyphs():
    text = "我们试试看！这本书是我朋友写的。▁Let's"
    assert not [m for m in _render(text, cjk()["fontfamily"]) if "missing from" in m]
    # the check can fail: matplotlib's default font alone has no Chinese glyphs and says so
    assert any("missing from" in m for m in _render(text, ["DejaVu Sans"]))


@pytest.fixture
def fresh_font_search():
    from attnlab.viz import fonts

    fonts.cjk_family.cache_clear()
    yield fonts
    fonts.cjk_family.cache_clear()


def test_the_packaged_font_is_used_without_any_system_font(fresh_font_search, monkeypatch):
    fonts = fresh_font_search
    monkeypatch.delenv(fonts.ENV_VAR, raising=False)
    monkeypatch.setattr(fonts, "CJK_FAMILIES", ("No Such Font SC",))
    monkeypatch.setattr(fonts, "KNOWN_PATHS", ("/nonexistent/font.ttc",))
    assert fonts.packaged_font() is not None, f"the {fonts.PACKAGE} dependency is not installed"
    assert fonts.use_cjk_font() == ["DejaVu Sans", "Noto Sans SC"]


def test_the_environment_variable_overrides_the_packaged_font(fresh_font_search, monkeypatch):
    fonts = fresh_font_search
    dejavu = Path(__import__("matplotlib").get_data_path()) / "fonts/ttf/DejaVuSerif.ttf"
    monkeypatch.setenv(fonts.ENV_VAR, str(dejavu))
    assert fonts.use_cjk_font() == ["DejaVu Sans", "DejaVu Serif"]


def test_no_cjk_font_is_a_clear_error(fresh_font_search, monkeypatch):
    fonts = fresh_font_search
    monkeypatch.delenv(fonts.ENV_VAR, raising=False)
    monkeypatch.setattr(fonts, "packaged_font", lambda: None)
    monkeypatch.setattr(fonts, "CJK_FAMILIES", ("No Such Font SC",))
    monkeypatch.setattr(fonts, "KNOWN_PATHS", ("/nonexistent/font.ttc",))
    with pytest.raises(AttnlabError, match="pip install pylopdf-fonts-zh-cn") as e:
        fonts.use_cjk_font()
    assert "\n" not in str(e.value)
    monkeypatch.setenv(fonts.ENV_VAR, "/nonexistent/mine.ttf")
    with pytest.raises(AttnlabError, match="mine.ttf"):
        fonts.use_cjk_font()


# -- attention ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["cross", "encoder", "decoder"])
def test_attention_grid_draws_the_models_weights(maps, kind, tmp_path):
    picture = plot_attention(maps, tmp_path / "a.png", kind=kind, layer=0)
    model = {"cross": maps.cross, "encoder": maps.encoder, "decoder": maps.decoder}[kind][0].numpy()  # (H,Q,K)
    assert picture.heads == list(range(model.shape[0])) and picture.layer == 0
    np.testing.assert_array_equal(picture.weights, model)
    np.testing.assert_allclose(picture.weights.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(picture.average, model.mean(0), atol=1e-6)
    queries, keys = {"cross": (maps.target, maps.source), "encoder": (maps.source, maps.source),
                     "decoder": (maps.target, ["<bos>", *maps.target[:-1]])}[kind]
    assert (picture.queries, picture.keys) == (queries, keys)
    assert picture.weights.shape[1:] == (len(queries), len(keys))
    if kind == "decoder":  # causal: nothing above the diagonal
        assert np.all(np.triu(picture.weights, k=1) == 0)
    path = tmp_path / "a.png"
    assert path.stat().st_size > 5000 and png_size(path) == picture.saved.size_px


def test_attention_one_head(maps, tmp_path):
    grid = plot_attention(maps, tmp_path / "grid.png", layer=-1)
    one = plot_attention(maps, tmp_path / "one.svg", layer=-1, head=2)
    assert one.heads == [2] and one.average is None
    np.testing.assert_array_equal(one.weights[0], maps.cross[-1, 2].numpy())
    assert one.saved.size_px[0] < grid.saved.size_px[0]  # one panel is narrower than the grid
    svg = (tmp_path / "one.svg").read_text()
    w, h = (float(x) for x in re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())
    assert (round(w / 72 * 100), round(h / 72 * 100)) == one.saved.size_px


@pytest.mark.parametrize("layer, head, message", [(5, None, "layer 5"), (0, 4, "head 4"), (-3, None, "layer -3")])
def test_attention_bad_layer_or_head(maps, layer, head, message):
    with pytest.raises(AttnlabError, match=message):
        attention_figure(maps, "cross", layer, head)


def test_viz_attention_command(tiny_run, tmp_path, capsys):
    out = tmp_path / "cli.png"
    code, stdout, err = run(["viz", "attention", "--model", str(tiny_run), SENTENCE, "--kind", "encoder",
                             "--head", "1", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads(stdout)
    assert result["heads"] == [1] and result["out"] == str(out) and png_size(out)[0] > 100
    code, _, err = run(["viz", "attention", "--model", str(tiny_run), SENTENCE, "--out", str(tmp_path / "x.jpg")], capsys)
    assert code == 2 and "x.jpg" in err and ".png or .svg" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(["viz", "attention", "--model", str(tiny_run), SENTENCE, "--layer", "7",
                        "--out", str(tmp_path / "y.png")], capsys)
    assert code == 2 and "layer 7" in err


# -- positions and scaling ----------------------------------------------------------------------

def test_positions_picture_is_the_formula(tmp_path):
    d, t = 16, 40
    picture = plot_positions(tmp_path / "p.png", dim=d, length=t)
    pos, i = np.arange(t)[:, None], np.arange(d // 2)[None, :]
    expected = np.empty((t, d))
    expected[:, 0::2] = np.sin(pos / 10000 ** (2 * i / d))
    expected[:, 1::2] = np.cos(pos / 10000 ** (2 * i / d))
    np.testing.assert_allclose(picture.table, expected, atol=1e-6)
    np.testing.assert_allclose(picture.curves, expected[:, picture.dims].T, atol=1e-6)
    np.testing.assert_allclose(picture.similarity, expected @ expected.T, atol=1e-4)
    np.testing.assert_allclose(np.diag(picture.similarity), d / 2, atol=1e-4)  # sin² + cos² = 1 per pair
    # the similarity depends only on the distance p - q: every diagonal is constant
    for k in range(-t + 1, t):
        band = np.diagonal(picture.similarity, offset=k)
        assert np.ptp(band) < 1e-4, k
    assert png_size(tmp_path / "p.png") == (1200, 400)


def test_scaling_statistics_match_theory():
    """q·k of unit-variance vectors has variance d (relative standard error of a sample variance with
    N = 20000 is below 2%, so 6% is 3 standard errors); divided by √d it has variance 1."""
    data = scaling_data(dim=64, samples=20000)
    assert 64 in data.dims and np.var(data.dots) == pytest.approx(64, rel=0.06)
    for d, v, vs in zip(data.dims, data.var_unscaled, data.var_scaled):
        assert v == pytest.approx(d, rel=0.06), d
        assert vs == pytest.approx(1.0, rel=0.06), d
    # without scaling the softmax collapses onto one key as d grows; with it, it stays spread out
    assert data.entropy_unscaled[-1] < 0.1 * data.max_entropy < data.entropy_unscaled[0]
    assert np.all(np.diff(data.entropy_unscaled) < 0)
    assert np.all(data.entropy_scaled > 0.8 * data.max_entropy)
    assert np.all(data.entropy_scaled[1:] > data.entropy_unscaled[1:])


# -- embeddings ---------------------------------------------------------------------------------

@pytest.fixture
def planted(tmp_path) -> Path:
    """Two clusters of 15 words each in 12 dimensions, most frequent first."""
    rng = np.random.default_rng(0)
    centre = rng.standard_normal(12) * 3
    vectors = np.concatenate([centre + rng.standard_normal((15, 12)), -centre + rng.standard_normal((15, 12))])
    words = [f"a{i}" for i in range(15)] + [f"猫{i}" for i in range(15)]
    folder = tmp_path / "vectors"
    WordVectors(words, vectors.astype(np.float32), np.arange(30, 0, -1)).save(folder)
    return folder


def test_embeddings_pca_is_the_svd(planted, tmp_path):
    wv = WordVectors.load(planted)
    words, x = choose(wv, top=30)
    picture = plot_embeddings(words, x, tmp_path / "e.png", "pca")
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    expected = centred @ vt[:2].T
    signs = np.sign((picture.coords * expected).sum(0))  # each axis may flip
    np.testing.assert_allclose(picture.coords * signs, expected, atol=1e-4)
    np.testing.assert_allclose(picture.explained, s[:2] ** 2 / (s**2).sum(), atol=1e-6)
    side = np.sign(picture.coords[:, 0])
    assert len(set(side[:15])) == 1 and len(set(side[15:])) == 1 and side[0] != side[15]  # the clusters split on PC 1
    assert png_size(tmp_path / "e.png") == (1000, 900)


def test_embeddings_tsne_keeps_the_clusters(planted):
    x = WordVectors.load(planted).vectors
    coords, explained = project(x, "tsne")
    assert coords.shape == (30, 2) and explained is None
    dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    within = (dist[:15, :15].mean() + dist[15:, 15:].mean()) / 2
    assert within < 0.5 * dist[:15, 15:].mean()


def test_viz_embeddings_command(planted, tiny_run, tmp_path, capsys, caplog):
    words = tmp_path / "words.txt"
    words.write_text("# a comment\na1\n猫2\nnot-there\na3\n", encoding="utf-8")
    out = tmp_path / "w.svg"
    code, stdout, err = run(["viz", "embeddings", "--vectors", str(planted), "--words", str(words), "--out", str(out)], capsys)
    assert code == 0, err
    assert json.loads(stdout)["words"] == 3 and "not-there" in caplog.text and out.read_text().startswith("<?xml")
    out = tmp_path / "m.png"  # a run directory: the model's embedding matrix, one point per subword piece
    code, stdout, err = run(["viz", "embeddings", "--vectors", str(tiny_run), "--top", "20", "--out", str(out)], capsys)
    assert code == 0, err
    assert json.loads(stdout)["words"] == 20 and png_size(out) == (1000, 900)
    code, _, err = run(["viz", "embeddings", "--vectors", str(tmp_path / "nowhere"), "--out", str(out)], capsys)
    assert code == 2 and "nowhere" in err


# -- training curves and the report ---------------------------------------------------------------

def test_training_curves_are_the_metrics_log(tiny_run, tmp_path):
    picture = plot_training(tiny_run, tmp_path / "t.png")
    records = read_metrics(tiny_run)
    c = picture.curves
    assert c.loss[0].tolist() == list(range(10, 201, 10))  # log_every 10, 200 steps
    assert c.loss[1].tolist() == [r["loss"] for r in records if "loss" in r]
    assert c.lr[1].tolist() == [r["lr"] for r in records if "lr" in r]
    assert c.dev_bleu[0].tolist() == list(range(20, 201, 20)) and c.dev_ppl[1].tolist() == [r["dev_ppl"] for r in records if "dev_ppl" in r]
    assert png_size(tmp_path / "t.png") == (1200, 750)


def test_training_bad_metrics_line(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\nnot json\n')
    with pytest.raises(AttnlabError, match=r"metrics.jsonl:2"):
        read_metrics(tmp_path)


def test_train_wrote_the_report(tiny_run):
    page = (tiny_run / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 1 + 3 and "<th>translation</th>" in page


def test_report_is_self_contained(tiny_run, tmp_path, capsys):
    out = tmp_path / "report.html"
    code, stdout, err = run(["viz", "report", "--run", str(tiny_run), "--out", str(out), "--count", "2"], capsys)
    assert code == 0, err
    page = out.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 1 + 2  # the curves, then one attention grid per sample
    assert all(base64.b64decode(b)[:4] == b"\x89PNG" for b in images)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing loaded from elsewhere
    test_sources = [ln.split("\t")[1] for ln in (tiny_run.parent / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    shown = re.findall(r"<th>source</th><td>([^<]*)</td>", page)
    assert len(shown) == 2 and set(shown) <= set(test_sources)
    assert "dev_bleu" in page


def test_train_writes_the_report_and_survives_its_failure(tiny_corpus, tmp_path, monkeypatch, caplog, capsys):
    import attnlab.train
    import attnlab.viz.report

    calls = []
    done = {"reason": "done", "step": 1, "epoch": 0, "dev_loss": 3.0, "dev_ppl": 20.09, "dev_bleu": None,
            "machine_gflops": None}  # what train() returns on rank 0
    monkeypatch.setattr(attnlab.train, "train", lambda cfg, out, resume=False: done)
    monkeypatch.setattr(attnlab.viz.report, "write_report", lambda run_dir: calls.append(run_dir))
    args = ["train", "--config", str(tiny_corpus["config"]), "--out", str(tmp_path / "r")]
    assert run(args, capsys)[0] == 0 and calls == [tmp_path / "r"]
    monkeypatch.setattr(attnlab.train, "train", lambda cfg, out, resume=False: {"reason": "done", "rank": 1})
    assert run(args, capsys)[0] == 0 and len(calls) == 1  # other ranks write no report

    def broken(run_dir):
        raise RuntimeError("no room on the page")

    monkeypatch.setattr(attnlab.train, "train", lambda cfg, out, resume=False: done)
    monkeypatch.setattr(attnlab.viz.report, "write_report", broken)
    assert run(args, capsys)[0] == 0 and "no room on the page" in caplog.text


# -- the command line ---------------------------------------------------------------------------

def test_every_viz_flag_has_help():
    parser = build_parser()
    viz = next(a for a in parser._subparsers._group_actions[0].choices["viz"]._actions if a.dest == "viz_command")
    assert set(viz.choices) == {"attention", "positions", "scaling", "embeddings", "training", "report"}
    for name, sub in viz.choices.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"viz {name} {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize("args, size", [
    (["positions", "--dim", "32", "--length", "20"], (1200, 400)),
    (["scaling", "--dim", "16", "--samples", "2000"], (1500, 440)),
])
def test_viz_positions_and_scaling_commands(args, size, tmp_path, capsys):
    out = tmp_path / "pic.png"
    code, stdout, err = run(["viz", *args, "--out", str(out)], capsys)
    assert code == 0, err
    assert out.stat().st_size > 10000 and png_size(out) == size
    if args[0] == "scaling":
        result = json.loads(stdout)
        assert result["variance"] == pytest.approx(16, rel=0.15) and result["variance_scaled"] == pytest.approx(1, rel=0.15)


# -- the interactive attention page -------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"  # Debian's Chromium, driven as in test_serve_browser.py
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
CRAFTED = ["</script><script>alert(1)</script>", "<b>bold</b>", "a&amp;b", "\u2028", '"quote"']


def page_data(path: Path) -> dict:
    """The JSON block of an attention page, read the way its script reads it."""
    page = path.read_text(encoding="utf-8")
    blocks = re.findall(r'<script type="application/json" id="attention-data">(.*?)</script>', page, re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


def crafted_maps() -> "AttentionMaps":
    """Attention over tokens that would break a page that pasted them in as HTML."""
    import torch

    from attnlab.translate.pytorch import AttentionMaps

    s, t = len(CRAFTED), 3
    g = torch.Generator().manual_seed(0)
    soft = lambda *shape: torch.softmax(torch.randn(*shape, generator=g), dim=-1)
    return AttentionMaps(source=CRAFTED, target=["<i>x</i>", "</SCRIPT >", "</s>"], translation="<b>x</b> </script>",
                         encoder=soft(1, 2, s, s), decoder=soft(1, 2, t, t), cross=soft(1, 2, t, s))


@pytest.mark.parametrize("kind, layer, head", [("cross", -1, None), ("encoder", 0, 3), ("decoder", 0, None)])
def test_attention_page_holds_the_models_weights(maps, kind, layer, head, tmp_path):
    from attnlab.viz.attention_html import write_attention_html

    out = tmp_path / "sub" / "a.html"
    written = write_attention_html(maps, out, kind, layer, head)
    data = page_data(out)
    model = {"cross": maps.cross, "encoder": maps.encoder, "decoder": maps.decoder}[kind][layer].numpy()  # (H,Q,K)
    weights = np.array(data["weights"])
    assert weights.shape == model.shape and written.heads == list(range(model.shape[0]))
    np.testing.assert_allclose(weights, model, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(weights.astype(np.float32), model)  # nothing rounded on the way
    np.testing.assert_allclose(np.array(data["mean"]), model.mean(0), rtol=0, atol=1e-6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.array(data["mean"]).sum(-1), 1.0, atol=1e-5)
    queries, keys = {"cross": (maps.target, maps.source), "encoder": (maps.source, maps.source),
                     "decoder": (maps.target, ["<bos>", *maps.target[:-1]])}[kind]
    assert (data["queries"], data["keys"]) == (queries, keys)
    assert data["kind"] == kind and data["layer"] == written.layer == 0 and data["head"] == head
    assert data["translation"] == maps.translation and data["source"] == SENTENCE


def test_attention_page_is_self_contained(maps, tmp_path):
    from attnlab.viz.attention_html import write_attention_html

    out = tmp_path / "a.html"
    write_attention_html(maps, out)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and "__DATA__" not in page and "__TITLE__" not in page
    assert not re.search(r"https?://|\ssrc=|\shref=|@import|url\(|fetch\(|XMLHttpRequest", page)
    assert page.count("<script") == 2 and page.count("</script>") == 2 and "innerHTML" not in page


def test_attention_page_tokens_cannot_break_out(tmp_path):
    from attnlab.viz.attention_html import write_attention_html

    out = tmp_path / "crafted.html"
    crafted = crafted_maps()
    write_attention_html(crafted, out, "cross", 0, 1)
    page = out.read_text(encoding="utf-8")
    # the page holds exactly its own two script blocks and no tag from a token
    assert page.count("</script>") == 2 and "<b>" not in page and "<i>" not in page and "</SCRIPT" not in page
    data = page_data(out)
    assert data["keys"] == CRAFTED and data["queries"] == crafted.target and data["translation"] == crafted.translation
    np.testing.assert_array_equal(np.array(data["weights"], dtype=np.float32), crafted.cross[0].numpy())


def test_attention_page_bad_arguments(maps, tmp_path):
    from attnlab.viz.attention_html import write_attention_html

    with pytest.raises(AttnlabError, match="head 4"):
        write_attention_html(maps, tmp_path / "a.html", head=4)
    with pytest.raises(AttnlabError, match="layer 2"):
        write_attention_html(maps, tmp_path / "a.html", layer=2)
    with pytest.raises(AttnlabError, match="a.htm"):
        write_attention_html(maps, tmp_path / "a.htm")
    assert not list(tmp_path.iterdir())


def test_viz_attention_html_command(tiny_run, tmp_path, capsys):
    out = tmp_path / "cli.html"
    code, stdout, err = run(["viz", "attention", "--model", str(tiny_run), SENTENCE, "--kind", "decoder",
                             "--head", "2", "--out", str(out)], capsys)
    assert code == 0, err
    result = json.loads(stdout)
    data = page_data(out)
    assert result["out"] == str(out) and result["heads"] == [0, 1, 2, 3] and result["layer"] == 0
    assert data["kind"] == "decoder" and data["head"] == 2 and data["translation"] == result["translation"]
    code, _, err = run(["viz", "attention", "--model", str(tiny_run), SENTENCE, "--out", str(tmp_path / "x.htm")], capsys)
    assert code == 2 and "x.htm" in err and ".html" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def browser(chromium_env):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's Chromium is not installed ({CHROMIUM} is missing; apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed: "
                                   "pip install -e '.[test]' (make setup does)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, env=chromium_env)
        yield browser
        browser.close()


def test_attention_page_in_the_browser(maps, browser, tmp_path):
    from attnlab.viz.attention_html import write_attention_html

    write_attention_html(maps, tmp_path / "a.html", "encoder", -1, None)  # the tiny model's translation is short
    write_attention_html(crafted_maps(), tmp_path / "crafted.html", "cross", 0, 1)
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.set_default_timeout(10_000)
    urls, errors = [], []
    page.on("request", lambda request: urls.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto((tmp_path / "a.html").as_uri())
    assert page.locator("th.key").all_text_contents() == maps.source
    assert page.locator("th.query").all_text_contents() == maps.source
    assert page.locator("td.cell").count() == len(maps.source) ** 2
    assert page.input_value("#head") == "mean" and page.locator("#head option").count() == 1 + maps.encoder.shape[1]
    assert page.text_content("#translation") == maps.translation

    key = page.locator("th.key").first
    before = key.evaluate("el => el.style.backgroundColor")
    page.hover("th.query >> nth=1")
    after = key.evaluate("el => el.style.backgroundColor")
    assert before == "" and after.startswith("rgba(37, 99, 235")
    mean = maps.encoder[-1].mean(0).numpy()  # (S,S)
    shown = [float(x) for x in page.locator("td.number").all_text_contents()]
    np.testing.assert_allclose(shown, mean[1], atol=0.005 + 1e-6)  # printed to 2 decimals
    assert page.locator("th.key.attended").count() >= 1 and page.locator("th.query.active").count() == 1

    page.select_option("#head", "2")  # another head: the highlighted row shows that head's weights
    shown = [float(x) for x in page.locator("td.number").all_text_contents()]
    np.testing.assert_allclose(shown, maps.encoder[-1, 2, 1].numpy(), atol=0.005 + 1e-6)
    page.hover("td.cell >> nth=0")
    assert page.text_content("#readout").endswith(f"{maps.encoder[-1, 2, 0, 0].item():.3f}")

    page.goto((tmp_path / "crafted.html").as_uri())  # tokens that look like markup stay text
    assert page.locator("th.key").all_text_contents() == CRAFTED
    assert page.locator("b, i").count() == 0 and page.locator("script").count() == 2
    assert page.input_value("#head") == "1"
    assert all(u.startswith("file://") for u in urls), urls
    assert not errors, errors
    page.close()
