"""Dev loss and dev BLEU against training steps, one line per trained variant, side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attnlab.experiments.budget import TrainedVariant
from attnlab.viz.figure import new_figure, save


def plot_curves(variants: Sequence[TrainedVariant], out: Path, title: str) -> Path:
    """Two panels (dev loss, dev BLEU), a line per variant with its test BLEU in the legend; saved to `out`."""
    fig = new_figure(11, 4.2)
    ax_loss, ax_bleu = fig.subplots(1, 2)
    for v in variants:
        steps = [c["step"] for c in v.curve]
        label = f"{v.name} (test BLEU {v.test_bleu:.1f})"
        ax_loss.plot(steps, [c["dev_loss"] for c in v.curve], "o-", ms=3, label=label)
        if any(c.get("dev_bleu") is not None for c in v.curve):
            ax_bleu.plot(steps, [c.get("dev_bleu") or 0.0 for c in v.curve], "o-", ms=3, label=label)
    ax_loss.set(title="dev loss (NLL per target token)", xlabel="optimizer step", ylabel="loss")
    ax_bleu.set(title="dev BLEU (greedy, dev subset)", xlabel="optimizer step", ylabel="BLEU")
    ax_loss.legend(fontsize=8)
    fig.suptitle(title)
    save(fig, out)
    return out
