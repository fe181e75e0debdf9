"""attnlab's own training step, before and after a change: seconds per optimizer step of `attnlab train`
at two (or more) git revisions, on the same config, batches and thread count, in turns.

    python benchmarks/step_time.py --refs 5aba6bc HEAD [--config configs/zh-en-small.toml] [--steps 40]
    taskset -c 0 python benchmarks/step_time.py --refs 5aba6bc HEAD --threads 1   # the reference budget's core

Each revision's `attnlab` package is extracted with `git archive` into a temporary folder and run in its
own process through its public `build_trainer` (what `attnlab train` runs: the same data, batches in the
same seeded order, model and optimizer), timing `--steps` calls of `train_step` after `--warmup` untimed
ones. The revisions take turns `--repeats` times, so that a change in the machine's load falls on all of
them; the row gives the median and the spread (min-max). The tokenizer is trained once and copied into
every run (training it is not what is timed). What a step costs decides how many steps a time budget
buys: the quality rows' step counts come from here. Rows go to benchmarks/results/step-time.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, shutil, sys, time
from pathlib import Path
import torch
from attnlab.config import load_config
from attnlab.tokenizer import Tokenizer
try:
    from attnlab.train import build_trainer
except ImportError:  # revisions whose Trainer prepared its own run (7a5c260 and before)
    from attnlab.train import Trainer
    build_trainer = lambda cfg, run_dir: Trainer(cfg, Path(run_dir))

config, tok_dir, run_dir, threads, warmup, steps = sys.argv[1:7]
cfg = load_config(config, [f"train.threads={threads}", "train.max_minutes=0", "train.eval_every=1000000",
                          f"train.max_steps={int(warmup) + int(steps) + 1}"])
Tokenizer.train = staticmethod(lambda pairs, tcfg, out, *a, **k: shutil.copytree(tok_dir, out, dirs_exist_ok=True))
trainer = build_trainer(cfg, run_dir)
for _ in range(int(warmup)):
    trainer.train_step()
t0 = time.perf_counter()
results = [trainer.train_step() for _ in range(int(steps))]
tokens = sum(r["tokens"] if isinstance(r, dict) else r.tokens for r in results)  # a dict before the redesign
seconds = time.perf_counter() - t0
print(json.dumps({"s_per_step": seconds / int(steps), "tok_s": tokens / seconds}))
"""


def extract(ref: str, into: Path) -> Path:
    """The attnlab package at git revision `ref`, in its own folder."""
    out = into / ref.replace("/", "_")
    out.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "attnlab"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def tokenizer(config: str, into: Path) -> Path:
    """The config's tokenizer, trained once by the working tree's attnlab."""
    from attnlab.config import load_config
    from attnlab.data.parallel import load_pairs
    from attnlab.tokenizer import Tokenizer

    cfg = load_config(config)
    out = into / "tokenizer"
    Tokenizer.train(load_pairs(cfg.data.train, cfg.direction).pairs, cfg.tokenizer, out, seed=cfg.train.seed)
    return out


def time_ref(src: Path, args: argparse.Namespace, tok_dir: Path, work: Path) -> dict[str, float]:
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(src))
    cmd = [sys.executable, "-c", WORKER, args.config, str(tok_dir), str(run_dir), str(args.threads),
           str(args.warmup), str(args.steps)]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"step_time: the run of {src.name} failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--refs", nargs="+", required=True, help="git revisions to compare; the first is the baseline")
    p.add_argument("--config", default="configs/zh-en-small.toml", help="training config (data, model, batch size)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: one core of the reference budget)")
    p.add_argument("--steps", type=int, default=40, help="timed optimizer steps per run")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--repeats", type=int, default=3, help="runs per revision (the row is their median)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/step-time.json", help="where to write the rows")
    args = p.parse_args()
    for ref in args.refs:
        if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", ref + "^{commit}"],
                          capture_output=True).returncode:
            sys.exit(f"step_time: {ref!r} is not a git revision of {ROOT}")
    if not Path(args.config).is_file():
        sys.exit(f"step_time: no config file {args.config}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trees = [extract(ref, work / "src") for ref in args.refs]
        tok_dir = tokenizer(args.config, work)
        times: list[list[dict[str, float]]] = [[] for _ in args.refs]
        for rep in range(args.repeats):  # in turns
            for i, tree in enumerate(trees):
                times[i].append(time_ref(tree, args, tok_dir, work))
                print(f"repeat {rep + 1}: {args.refs[i]} {times[i][-1]['s_per_step']:.3f} s/step", flush=True)
    rows = []
    for ref, runs in zip(args.refs, times):
        secs = [r["s_per_step"] for r in runs]
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", ref], check=True,
                                capture_output=True, text=True).stdout.strip()
        rows.append({"ref": ref, "commit": commit, "s_per_step": statistics.median(secs), "min": min(secs), "max": max(secs),
                     "tok_s": statistics.median(r["tok_s"] for r in runs)})
    print(f"\n| revision | s/step, median (min-max) | target tok/s | speed vs {args.refs[0]} |\n|---|---|---|---|")
    for r in rows:
        r["speedup"] = rows[0]["s_per_step"] / r["s_per_step"]
        print(f"| {r['ref']} ({r['commit']}) | {r['s_per_step']:.3f} ({r['min']:.3f}-{r['max']:.3f}) | {r['tok_s']:,.0f} | {r['speedup']:.2f}x |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"config": args.config, "threads": args.threads, "steps": args.steps,
                                     "repeats": args.repeats, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
