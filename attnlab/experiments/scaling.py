"""Why divide q·k by √d_k, measured by training without it: the same model trained under one budget with
its scores divided by √d_k (the paper), by 1 (no scaling) and by d_k (a fixed larger temperature, as μP
does), `model.attention_scale`. For each: dev curves and test BLEU; then, on the trained models, per layer
and head the variance of q·k, the softmax entropy and the share of saturated rows (`attention_stats`),
over teacher-forced dev pairs, against the √d argument's prediction for independent components.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attnlab import checkpoint
from attnlab.config import Config
from attnlab.data.parallel import load_pairs
from attnlab.experiments.attention_stats import HeadStats, attention_stats
from attnlab.experiments.budget import Budget, TrainedVariant, train_variant
from attnlab.experiments.curves import plot_curves
from attnlab.experiments.results import Results
from attnlab.viz.figure import new_figure, save

VARIANTS = ("sqrt", "none", "dk")  # the paper's first
DEV_PAIRS = 300  # dev pairs the attention statistics are measured on


def measure(run_dir: Path, pairs: int = DEV_PAIRS) -> list[HeadStats]:
    """Attention statistics of a run's best model over its first `pairs` dev pairs."""
    run = checkpoint.load_run(run_dir)
    data = load_pairs(run.cfg.data.dev, run.cfg.direction)
    src = run.tokenizer.encode_src(data.sources[:pairs])
    tgt = run.tokenizer.encode_tgt(data.targets[:pairs])
    keep = [i for i in range(len(src)) if src[i] and tgt[i]]
    return attention_stats(run.model, [src[i] for i in keep], [tgt[i] for i in keep])


def summary(name: str, stats: list[HeadStats]) -> dict:
    """One table row: the mean over heads of each statistic, and the extremes that matter."""
    n = len(stats)
    mean = lambda key: sum(getattr(s, key) for s in stats) / n  # noqa: E731
    return {"variant": name, "var_qk": round(mean("var_qk"), 2), "predicted": round(mean("predicted"), 2),
            "var_scaled": round(mean("var_scaled"), 2), "max_var_scaled": round(max(s.var_scaled for s in stats), 2),
            "entropy": round(mean("entropy"), 3), "max_entropy": round(mean("max_entropy"), 3),
            "saturated": round(mean("saturated"), 3), "max_saturated": round(max(s.saturated for s in stats), 3)}


def plot_heads(per_variant: dict[str, list[HeadStats]], out: Path) -> Path:
    """Three panels, a point per head (encoder, decoder, cross; layer by layer) and a line per variant."""
    fig = new_figure(15, 4.4)
    panels = fig.subplots(1, 3)
    keys = [("var_scaled", "variance of the scores the softmax sees", "variance"),
            ("entropy", "softmax entropy of a row", "nats"),
            ("saturated", "rows with a weight > 0.9", "share of rows")]
    labels: list[str] = []
    for name, stats in per_variant.items():
        labels = [f"{s.kind[:3]} L{s.layer} h{s.head}" for s in stats]
        for ax, (key, _, _) in zip(panels, keys):
            ax.plot(range(len(stats)), [getattr(s, key) for s in stats], "o-", ms=3, label=name)
    for ax, (key, title, unit) in zip(panels, keys):
        ax.set(title=title, ylabel=unit)
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
        if key == "var_scaled":
            ax.set_yscale("log")
    if per_variant:
        stats = next(iter(per_variant.values()))
        panels[1].plot(range(len(stats)), [s.max_entropy for s in stats], "k:", lw=1, label="uniform row")
    panels[0].legend(fontsize=8)
    panels[1].legend(fontsize=8)
    save(fig, out)
    return out


def run(cfg: Config, out_dir: Path, runs_dir: Path, budget: Budget, command: str,
        variants: Sequence[str] = VARIANTS, test_limit: int = 0, dev_pairs: int = DEV_PAIRS) -> Results:
    trained: list[TrainedVariant] = [train_variant(cfg, v, {"attention_scale": v}, runs_dir, budget, test_limit)
                                     for v in variants]
    per_variant = {v.name: measure(v.run_dir, dev_pairs) for v in trained}
    plot_curves(trained, out_dir / "scaling-curves.png",
                f"attention scale: the same model, {budget.describe(cfg)} each ({cfg.direction})")
    plot_heads(per_variant, out_dir / "scaling-heads.png")
    d_head = cfg.model.d_model // cfg.model.n_heads
    rows = [{**v.row(), **summary(v.name, per_variant[v.name])} for v in trained]
    return Results(
        study="scaling", command=command,
        title="q·k divided by √d_k, by 1 and by d_k, each trained under the same budget",
        columns=[("variant", "q·k divided by"), ("steps", "steps"), ("dev_loss", "dev loss"),
                 ("best_dev_bleu", "best dev BLEU"), ("test_bleu", "test BLEU"), ("var_qk", "var(q·k)"),
                 ("predicted", "var if independent"), ("var_scaled", "var(scores)"), ("entropy", "entropy"),
                 ("max_entropy", "uniform"), ("saturated", "saturated rows"), ("max_saturated", "worst head")],
        rows=rows, pictures=["scaling-curves.png", "scaling-heads.png"],
        notes=[f"d_k = {d_head} (sqrt: scores = q·k / {d_head ** 0.5:.2f}; dk: q·k / {d_head}). Attention "
               f"columns: means over every head of the encoder, decoder and cross-attention, on {dev_pairs} "
               "teacher-forced dev pairs; var(scores) is what the softmax sees; saturated: share of rows (of two "
               "keys or more) with a weight above 0.9 (worst head: the highest share of one head); entropy in nats. "
               f"Budget: {budget.describe(cfg)} per variant."],
        detail={"curves": {v.name: v.curve for v in trained},
                "heads": {name: [s.record() for s in stats] for name, stats in per_variant.items()}})


def run_trained(model_dir: Path, out_dir: Path, command: str, dev_pairs: int = DEV_PAIRS) -> Results:
    """The attention statistics of one model already trained (no training): its heads against the √d argument."""
    stats = measure(model_dir, dev_pairs)
    plot_heads({model_dir.name: stats}, out_dir / "scaling-heads.png")
    cfg = checkpoint.load_run_config(model_dir)
    d_head = cfg.model.d_model // cfg.model.n_heads
    return Results(
        study="scaling", command=command,
        title=f"the heads of {model_dir} (q·k divided by {cfg.model.attention_scale}) against the √d argument",
        columns=[("head", "head"), ("var_qk", "var(q·k)"), ("predicted", "var if independent"),
                 ("var_scaled", "var(scores)"), ("entropy", "entropy"), ("max_entropy", "uniform"),
                 ("saturated", "saturated rows")],
        rows=[{**s.record(), "head": f"{s.kind} layer {s.layer + 1} head {s.head + 1}"} for s in stats],
        pictures=["scaling-heads.png"],
        notes=[f"d_k = {d_head}: for q, k with independent components of mean 0 and variance 1 the paper's "
               f"argument gives var(q·k) = {d_head}. Measured on {dev_pairs} teacher-forced dev pairs; "
               "var if independent uses the measured means and variances of the components; var(scores) is "
               "what the softmax sees; saturated: share of the rows with two keys or more that put a weight above "
               "0.9 on one; entropy in nats."],
        detail={"model": str(model_dir)})
