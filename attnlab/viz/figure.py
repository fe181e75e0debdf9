"""Making figures and saving them: PNG or SVG chosen by the output suffix, at a fixed pixel size.

Figures are built with `matplotlib.figure.Figure` directly (the Agg canvas, no pyplot and no global
backend state), with the CJK font selected, and saved without tight cropping, so that an image is
exactly figsize × DPI pixels (PNG) or figsize × 72 points (SVG).
"""

from __future__ import annotations

import base64
import io
import logging
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from attnlab.errors import AttnlabError
from attnlab.viz.fonts import use_cjk_font

log = logging.getLogger(__name__)

DPI = 100  # PNG pixels per inch
FORMATS = {".png": "png", ".svg": "svg"}


@dataclass
class Saved:
    """Where a picture went and how big it is."""

    path: Path | None
    size_px: tuple[int, int]  # (width, height) at DPI; for SVG the size in points is figsize × 72


def new_figure(width: float, height: float) -> Figure:
    """A figure of width × height inches with constrained layout and the CJK font selected."""
    use_cjk_font()  # fail early, before any drawing, when no CJK font is installed
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def cjk() -> dict:
    """Keyword arguments that give a text artist (labels, titles) the CJK-capable font family."""
    return {"fontfamily": use_cjk_font()}


def image_format(out: Path) -> str:
    fmt = FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise AttnlabError(f"{out}: the output must end in .png or .svg")
    return fmt


def size_px(fig: Figure) -> tuple[int, int]:
    w, h = fig.get_size_inches()
    return round(w * DPI), round(h * DPI)


def save(fig: Figure, out: str | Path) -> Saved:
    """Write the figure to `out` (.png or .svg), creating its folder."""
    out = Path(out)
    fmt = image_format(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "png":  # no timestamps or version strings, so the same picture gives the same bytes
        fig.savefig(out, format=fmt, dpi=DPI, metadata={"Software": None}, pil_kwargs={"optimize": True})
    else:
        fig.savefig(out, format=fmt, dpi=DPI, metadata={"Date": None, "Creator": None})
    log.info("wrote %s", out)
    return Saved(out, size_px(fig))


def png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG, for a data: URL in a self-contained HTML page."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")
