"""Translation quality at a fixed CPU budget: train a config for M minutes, score dev (and test), print a row.

One row of BENCHMARKS.md's quality tables. The reference budget is 2 cores of a common laptop (fp32
GEMM peak ~150-170 GFLOP/s); on a faster machine emulate it with one core:

    taskset -c 0 python benchmarks/quality.py --name demo --config configs/zh-en-demo.toml --minutes 13

The script measures the fp32 matmul peak with the same thread count first and prints it beside the
scores. Dev BLEU (beam 4, full dev split) is what levers are tuned on; pass --test only once per
final configuration. Results go to benchmarks/results/quality-NAME.json; a model of both directions
(`--set bidirectional=true`) is scored in each, its other direction as row NAME-rev.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from attnlab.config import Config, load_config
from attnlab.hardware import matmul_peak

ROOT = Path.cwd()  # runs/ and benchmarks/results/ are written under the working directory


def attnlab(*args: str) -> str:
    """Run the attnlab CLI with this interpreter; return its stdout (stderr passes through)."""
    out = subprocess.run([sys.executable, "-m", "attnlab", *args], check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout


def settings(cfg: Config) -> str:
    """The settings that the quality levers change, in one line (the table's settings column)."""
    m, t = cfg.model, cfg.train
    sched = (f"inverse_sqrt warm-up {t.warmup_steps} ×{t.lr_scale:g}" if t.schedule == "inverse_sqrt"
             else f"{t.schedule} peak {t.lr_peak:g} warm-up {t.warmup_fraction:g}")
    if t.cooldown_fraction:
        sched += f", cool-down {t.cooldown_fraction:g}"
    parts = [f"d{m.d_model} {m.n_encoder_layers}+{m.n_decoder_layers}", "pre-norm" if m.norm_first else "post-norm",
             sched, f"dropout {m.dropout:g}", f"vocab {cfg.tokenizer.vocab_size}", f"batch {t.max_tokens}"]
    if m.attention_dropout or m.activation_dropout:
        parts.append(f"attn/act dropout {m.attention_dropout:g}/{m.activation_dropout:g}")
    if t.label_smoothing != 0.1:
        parts.append(f"label smoothing {t.label_smoothing:g}")
    if t.weight_decay:
        parts.append(f"weight decay {t.weight_decay:g}")
    if t.subword_alpha:
        parts.append(f"subword alpha {t.subword_alpha:g}")
    if t.average_last:
        parts.append(f"average last {t.average_last}")
    if cfg.bidirectional:
        parts.append("one model for both directions")
    if cfg.data.dictionary:
        parts.append(f"dictionary pairs {cfg.data.dictionary} ({cfg.data.dictionary_scope})")
    if cfg.data.extra:
        parts.append(f"extra pairs {cfg.data.extra}")
    return ", ".join(parts)


def score_splits(model: Path, splits: list[str], beam: int, direction: str | None = None) -> dict:
    """dev/test BLEU and chrF of a model directory (beam search, multi-reference), in `direction` (None: its own)."""
    row = {}
    chosen = ["--direction", direction] if direction else []
    for split in splits:
        scores = json.loads(attnlab("--quiet", "evaluate", "--model", str(model), "--split", split, "--beam", str(beam),
                                    *chosen))
        row[f"{split}_bleu"] = round(scores["bleu"], 2)
        row[f"{split}_chrf"] = round(scores["chrf"], 2)
    return row


def write_rows(row: dict, model: Path, cfg: Config, splits: list[str], beam: int) -> dict:
    """Score `model` into `row` and write it; a model of both directions also gets row NAME-rev, scored the
    other way. Returns the first row."""
    rows = [dict(row, **score_splits(model, splits, beam))]
    if cfg.bidirectional:
        reverse = "-".join(reversed(cfg.direction.split("-")))
        rows.append(dict(row, name=f"{row['name']}-rev", direction=reverse,
                         **score_splits(model, splits, beam, reverse)))
    for r in rows:
        out = ROOT / "benchmarks" / "results" / f"quality-{r['name']}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(r, indent=1) + "\n")
        print(json.dumps(r))
    return rows[0]


def rescore(args: argparse.Namespace) -> None:
    """Score another choice of weights from a finished run: the mean of its last N checkpoints."""
    base = json.loads((ROOT / "benchmarks" / "results" / f"quality-{args.name}.json").read_text())
    run = ROOT / "runs" / f"quality-{args.name}"
    picked = ROOT / "runs" / f"quality-{args.name}-last{args.pick}"
    if picked.exists():
        shutil.rmtree(picked)
    attnlab("--quiet", "average", "--run", str(run), "--last", str(args.pick), "--out", str(picked))
    row = {k: v for k, v in base.items() if not k.endswith(("_bleu", "_chrf"))}
    row.update(name=f"{args.name}-last{args.pick}", picked=f"mean of the last {args.pick} checkpoints",
               settings=base["settings"] + (", last checkpoint" if args.pick == 1 else f", mean of last {args.pick}"))
    write_rows(row, picked, load_config(picked / "config.toml"), ["dev", "test"] if args.test else ["dev"], args.beam)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="row name; the run goes to runs/quality-NAME")
    p.add_argument("--config", type=Path, required=True, help="TOML config to train")
    p.add_argument("--minutes", type=float, required=True, help="training budget (train.max_minutes)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the reference-budget emulation)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override passed to attnlab train (repeatable)")
    p.add_argument("--beam", type=int, default=4, help="beam size for the scores (default 4)")
    p.add_argument("--test", action="store_true", help="also score the test split (once per final configuration)")
    p.add_argument("--keep", action="store_true", help="keep an existing runs/quality-NAME (resume it) instead of replacing it")
    p.add_argument("--pick", type=int, default=0, metavar="N",
                   help="do not train: score the mean of the last N checkpoints of the existing runs/quality-NAME "
                        "(1: the last checkpoint) as row NAME-lastN (the checkpoint choice, tuned on dev)")
    args = p.parse_args()
    if args.pick:
        return rescore(args)

    torch.set_num_threads(args.threads)
    peak = matmul_peak(3.0) / 1e9
    cores = len(os.sched_getaffinity(0))
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s with {args.threads} thread(s) on {cores} core(s)", flush=True)
    run = ROOT / "runs" / f"quality-{args.name}"
    if run.exists() and not args.keep:
        shutil.rmtree(run)
    sets = [x for kv in args.overrides for x in ("--set", kv)]
    t0 = time.time()
    result = json.loads(attnlab("train", "--config", str(args.config), "--out", str(run), "--resume",
                                "--max-minutes", str(args.minutes), "--threads", str(args.threads), *sets).strip().splitlines()[-1])
    train_wall = time.time() - t0
    cfg = load_config(run / "config.toml")  # what was trained (with --keep, the run's own settings)
    row = {"name": args.name, "direction": cfg.direction, "settings": settings(cfg), "config": str(args.config),
           "overrides": args.overrides, "minutes": args.minutes,
           "threads": args.threads, "cores": cores, "gflops": round(peak, 1), "steps": result["step"],
           "epoch": result["epoch"], "train_wall_s": round(train_wall, 1),
           "dev_bleu_greedy_subset": result.get("dev_bleu"), "averaged": bool(result.get("averaged", {}).get("best"))}
    if "averaged" in result and not row["averaged"]:  # the trainer kept its best single checkpoint instead
        row["settings"] += ", best single checkpoint kept (the average scored lower on dev)"
    row = write_rows(row, run, cfg, ["dev", "test"] if args.test else ["dev"], args.beam)
    test = f" | test BLEU {row['test_bleu']:.2f}" if args.test else ""
    print(f"| {args.name} | {' '.join(args.overrides) or '(config as is)'} | {row['steps']} steps | "
          f"dev BLEU {row['dev_bleu']:.2f}{test} | {peak:.0f} GFLOP/s × {args.threads} thread |")


if __name__ == "__main__":
    main()
