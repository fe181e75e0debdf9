"""Training curves from a run's metrics.jsonl: loss, perplexity, dev BLEU and learning rate against steps.

The trainer writes two kinds of records (attnlab/train.py): every `log_every` steps
{step, epoch, loss, ppl, lr, tok_s, elapsed_s} over the steps since the last one, and every
`eval_every` steps {step, epoch, dev_loss, dev_ppl, dev_bleu, best}. A resumed run may log a step
twice; the later record wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from attnlab.errors import AttnlabError
from attnlab.viz.figure import Saved, new_figure, save

METRICS_FILE = "metrics.jsonl"


@dataclass
class Curves:
    """The series of a metrics log, each as (steps, values) arrays."""

    loss: tuple[np.ndarray, np.ndarray]  # train loss (label-smoothed), per logging window
    ppl: tuple[np.ndarray, np.ndarray]  # train perplexity exp(NLL)
    lr: tuple[np.ndarray, np.ndarray]  # learning rate at the end of each window
    dev_loss: tuple[np.ndarray, np.ndarray]  # dev NLL per token
    dev_ppl: tuple[np.ndarray, np.ndarray]
    dev_bleu: tuple[np.ndarray, np.ndarray]  # steps where BLEU was measured
    best: list[int] = field(default_factory=list)  # steps whose weights became the best so far


@dataclass
class TrainingPicture:
    curves: Curves
    saved: Saved | None = None


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl (a run directory or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise AttnlabError(f"{path}: no metrics log (is this a run directory written by `attnlab train`?)")
    records = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise AttnlabError(f"{path}:{n}: not a JSON line ({e.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise AttnlabError(f"{path}:{n}: a record needs an integer \"step\"")
        records.append(record)
    if not records:
        raise AttnlabError(f"{path}: the metrics log is empty")
    return records


def curves(records: list[dict]) -> Curves:
    """Split the records into series, sorted by step (a step logged twice keeps its last record)."""
    def series(key: str) -> tuple[np.ndarray, np.ndarray]:
        by_step = {r["step"]: r[key] for r in records if r.get(key) is not None}
        steps = sorted(by_step)
        return np.array(steps, dtype=np.int64), np.array([by_step[s] for s in steps], dtype=np.float64)

    return Curves(series("loss"), series("ppl"), series("lr"), series("dev_loss"), series("dev_ppl"),
                  series("dev_bleu"), sorted({r["step"] for r in records if r.get("best")}))


def training_figure(c: Curves, title: str = "") -> Figure:
    fig = new_figure(12, 7.5)
    (ax_loss, ax_ppl), (ax_bleu, ax_lr) = fig.subplots(2, 2)
    ax_loss.plot(*c.loss, label="train (label-smoothed)")
    ax_loss.plot(*c.dev_loss, "o-", label="dev (NLL)")
    ax_loss.set(title="loss per target token", xlabel="step", ylabel="nats")
    ax_ppl.semilogy(*c.ppl, label="train")
    ax_ppl.semilogy(*c.dev_ppl, "o-", label="dev")
    ax_ppl.set(title="perplexity", xlabel="step")
    ax_bleu.plot(*c.dev_bleu, "o-", color="tab:green")
    best = [s for s in c.best if s in set(c.dev_bleu[0].tolist())]
    if best:
        values = dict(zip(c.dev_bleu[0].tolist(), c.dev_bleu[1].tolist()))
        ax_bleu.plot(best, [values[s] for s in best], "*", color="tab:orange", markersize=10, label="new best")
        ax_bleu.legend(fontsize=8)
    ax_bleu.set(title="dev BLEU" if len(c.dev_bleu[0]) else "dev BLEU (not measured)", xlabel="step", ylabel="BLEU")
    ax_lr.plot(*c.lr, color="tab:purple")
    ax_lr.set(title="learning rate (inverse-√ warm-up)", xlabel="step")
    for ax in (ax_loss, ax_ppl):
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_training(run: str | Path, out: str | Path) -> TrainingPicture:
    """Draw the curves of a run directory (or a metrics.jsonl) into `out` (.png or .svg)."""
    c = curves(read_metrics(run))
    fig = training_figure(c, f"training: {Path(run).name}")
    return TrainingPicture(c, save(fig, out))
