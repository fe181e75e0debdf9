"""runs/NAME/report.html: one self-contained page about a trained run.

The page holds the training curves, the dev scores of the kept weights, the model's size, and for a
few test sentences the source, the references, the translation and its cross-attention maps (every
head of the last decoder layer and their mean). Pictures are embedded as base64 PNG, so the file can be
mailed or opened anywhere without its run directory. `attnlab train` writes it when training ends.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from pathlib import Path

from attnlab import checkpoint
from attnlab.config import Config
from attnlab.errors import AttnlabError
from attnlab.fileio import atomic_write_text
from attnlab.model import count_parameters
from attnlab.viz.attention import attention_figure
from attnlab.viz.figure import png_base64
from attnlab.viz.training import curves, read_metrics, training_figure

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"
MAX_SOURCE_CHARS = 40  # sample sentences longer than this are skipped (their maps would be unreadable)
FALLBACK = {"zh": ["我们试试看！", "你今天想吃什么？", "这本书是我朋友写的。"],
            "en": ["Let's give it a try!", "What do you want to eat today?", "My friend wrote this book."]}
STYLE = """body{font-family:system-ui,"Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
img{max-width:100%;height:auto}.sample{border-top:1px solid #ddd;margin-top:1.5em}"""


@dataclass
class Sample:
    source: str
    references: list[str]
    translation: str


@dataclass
class Report:
    path: Path
    samples: list[Sample] = field(default_factory=list)
    images: int = 0  # embedded pictures


def sample_sentences(cfg: Config, count: int) -> list[tuple[str, list[str]]]:
    """The first `count` short test sentences with their references (built-in sentences without a test set)."""
    from attnlab.data.parallel import load_pairs

    try:
        groups = load_pairs(cfg.data.test, cfg.direction).references() if cfg.data.test else []
    except (AttnlabError, OSError) as e:
        log.info("report: no test sentences (%s); using built-in ones", e)
        groups = []
    short = [(src, refs) for src, refs in groups if len(src) <= MAX_SOURCE_CHARS]
    return short[:count] or [(s, []) for s in FALLBACK[cfg.src_lang][:count]]


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _table(rows: dict) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


def write_report(run_dir: str | Path, sentences: list[str] | None = None, count: int = 3,
                 out: str | Path | None = None) -> Report:
    """Write the report page of a trained run (to run_dir/report.html unless `out` is given)."""
    from attnlab.translate.pytorch import Translator

    run_dir = Path(run_dir)
    translator = Translator.load(run_dir)
    cfg = translator.cfg
    report = Report(Path(out) if out else run_dir / REPORT_FILE)
    parts = [f"<h1>attnlab run {html.escape(run_dir.name)} ({html.escape(cfg.direction)})</h1>"]
    scores = checkpoint.read_scores(run_dir)
    if scores is not None:
        parts += ["<h2>Scores of the kept weights (dev)</h2>", _table(scores)]
    m = cfg.model
    parts += ["<h2>Model</h2>", _table({"parameters": f"{count_parameters(m):,}", "d_model": m.d_model,
                                         "heads": m.n_heads, "d_ff": m.d_ff,
                                         "layers": f"{m.n_encoder_layers} + {m.n_decoder_layers}",
                                         "vocabulary": m.vocab_size, "beam": cfg.decode.beam})]
    try:
        c = curves(read_metrics(run_dir))
        parts += ["<h2>Training</h2>", _img(png_base64(training_figure(c)), "training curves")]
        report.images += 1
    except AttnlabError as e:
        log.warning("report: no training curves (%s)", e)
    pairs = [(s, []) for s in sentences] if sentences else sample_sentences(cfg, count)
    parts.append("<h2>Sample translations and their cross-attention</h2>")
    for src, refs in pairs:
        maps = translator.attention(src)
        fig, _ = attention_figure(maps, "cross", -1, None)
        report.samples.append(Sample(src, list(refs), maps.translation))
        rows = {"source": src, **{f"reference {i + 1}" if len(refs) > 1 else "reference": r for i, r in enumerate(refs)},
                "translation": maps.translation, "pieces": " ".join(maps.source) + "  →  " + " ".join(maps.target)}
        parts += ['<div class="sample">', _table(rows), _img(png_base64(fig), f"cross-attention for {src}"), "</div>"]
        report.images += 1
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>attnlab {html.escape(run_dir.name)}'
            f"</title><style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    report.path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report.path, page)
    log.info("wrote %s", report.path)
    return report
