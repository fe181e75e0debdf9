"""`viz attention --out FILE.html`: one attention layer as a self-contained interactive page.

The page owns no numbers of its own: `attention_data` takes the same (L, H, Q, K) weights and axis
labels that the PNG/SVG heatmaps draw (`attention.select`, straight from `Translator.attention`) and
keeps one layer of them, every head plus their mean. `write_attention_html` puts that data into the
template static/attention.html as inline JSON; the template's script draws the grid, the head selector
and the hover highlighting. Nothing is fetched from elsewhere (no scripts, fonts or network), so the
file opens anywhere.

Safety: the JSON sits in a <script type="application/json"> block with `<`, `>` and `&` written as
\\u escapes, so no token can close the block; the script sets every token as textContent.

Shape letters: L layers, H heads, Q query positions (rows), K key positions (columns).
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_text
from attnlab.translate.pytorch import AttentionMaps
from attnlab.viz.attention import checked_index, select, source_text

log = logging.getLogger(__name__)

HTML_SUFFIX = ".html"
TEMPLATE = Path(__file__).parent / "static" / "attention.html"
AXES = {"cross": ("target", "source"), "encoder": ("source", "source"), "decoder": ("target", "decoder input")}


@dataclass
class AttentionPage:
    """What an attention page holds."""

    path: Path
    kind: str  # cross, encoder or decoder
    layer: int  # the layer shown, counted from 0
    heads: list[int]  # the heads the selector offers (besides their mean)
    head: int | None  # the head shown first; None: the mean
    data: dict  # the JSON embedded in the page


def attention_data(maps: AttentionMaps, kind: str = "cross", layer: int = -1, head: int | None = None) -> dict:
    """One layer of one kind of attention as plain JSON-ready values: every head's (Q, K) weights,
    their mean, the row and column pieces, and the sentence pair."""
    weights, queries, keys = select(maps, kind)  # (L,H,Q,K)
    n_layers, n_heads = weights.shape[:2]
    layer = checked_index(layer, n_layers, "layer")
    head = None if head is None else checked_index(head, n_heads, "head")
    rows, cols = AXES[kind]
    return {
        "kind": kind, "layer": layer, "layers": n_layers, "head": head,
        "source": source_text(maps), "translation": maps.translation,
        "queries": queries, "keys": keys, "rows": rows, "columns": cols,
        "weights": weights[layer].tolist(),  # (H,Q,K) float32 values, exactly as the model returned them
        "mean": weights[layer].mean(axis=0).tolist(),  # (Q,K) the mean over heads, as the PNG's last panel
    }


def script_json(data: dict) -> str:
    """`data` as JSON that is safe inside a <script> block: no `<`, `>` or `&` characters at all."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render(data: dict) -> str:
    """The page for `data` (from `attention_data`)."""
    template = TEMPLATE.read_text(encoding="utf-8")
    if template.count("__TITLE__") != 1 or template.count("__DATA__") != 1:
        raise AttnlabError(f"{TEMPLATE}: the template must hold __TITLE__ and __DATA__ once each")
    title = html.escape(f"attnlab: {data['kind']} attention, layer {data['layer']}")
    return template.replace("__TITLE__", title).replace("__DATA__", script_json(data))


def write_attention_html(maps: AttentionMaps, out: str | Path, kind: str = "cross", layer: int = -1,
                         head: int | None = None) -> AttentionPage:
    """Write the interactive page of `kind` attention in `layer` to `out` (a .html file)."""
    out = Path(out)
    if out.suffix.lower() != HTML_SUFFIX:
        raise AttnlabError(f"{out}: an attention page must end in {HTML_SUFFIX}")
    data = attention_data(maps, kind, layer, head)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, render(data))
    log.info("wrote %s", out)
    return AttentionPage(out, kind, data["layer"], list(range(len(data["weights"]))), data["head"], data)
