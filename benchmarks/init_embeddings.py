"""What starting from Word2Vec vectors does to a translation model's first steps.

Trains the same config twice for --steps optimizer steps with the same seed: once with random
embeddings, once with `--init-embeddings` from the given vector folders; then prints dev loss
(and dev BLEU) at every evaluation for both, side by side.

    python benchmarks/init_embeddings.py --config configs/zh-en-demo.toml \
        --vectors runs/w2v-zh --vectors runs/w2v-en --steps 1000 --every 250 --out runs/init-bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def run(config: Path, out: Path, steps: int, every: int, threads: int, vectors: list[Path]) -> list[dict]:
    cmd = [sys.executable, "-m", "attnlab", "--quiet", "train", "--config", str(config), "--out", str(out),
           "--threads", str(threads), "--set", f"train.max_steps={steps}", "--set", f"train.eval_every={every}",
           "--set", "train.max_minutes=0", "--set", "train.dev_bleu_sentences=300"]
    for v in vectors:
        cmd += ["--init-embeddings", str(v)]
    if not (out / "metrics.jsonl").exists():
        subprocess.run(cmd, check=True)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "dev_loss" in r]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, required=True, help="translation config (TOML)")
    p.add_argument("--vectors", type=Path, action="append", required=True, help="vector folder (repeatable)")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps per run")
    p.add_argument("--every", type=int, default=250, help="steps between dev evaluations")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--out", type=Path, default=Path("runs/init-bench"), help="folder for the two runs (kept; reused if present)")
    args = p.parse_args()
    base = run(args.config, args.out / "random", args.steps, args.every, args.threads, [])
    init = run(args.config, args.out / "word2vec", args.steps, args.every, args.threads, args.vectors)
    print(f"{'step':>6} {'dev loss random':>16} {'dev loss w2v':>13} {'diff':>7} {'BLEU random':>12} {'BLEU w2v':>9}")
    for b, i in zip(base, init):
        print(f"{b['step']:6d} {b['dev_loss']:16.3f} {i['dev_loss']:13.3f} {i['dev_loss'] - b['dev_loss']:+7.3f} "
              f"{b.get('dev_bleu', float('nan')):12.2f} {i.get('dev_bleu', float('nan')):9.2f}")


if __name__ == "__main__":
    main()
