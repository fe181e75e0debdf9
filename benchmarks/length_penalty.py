"""The beam search's length penalty, chosen on dev: sweep the GNMT alpha for a trained run, then score test once.

    python benchmarks/length_penalty.py --model runs/quality-z60-bt2048-cool015 --alphas 0.6 0.8 1.0 1.3 1.6 \
        [--direction en-zh] [--test-alpha 1.0]

Each alpha is one `attnlab evaluate --split dev --beam 4 --length-penalty A` (sacreBLEU, every reference);
with --test-alpha, the test split is scored once at that alpha (chosen from the dev rows, never from test).
Results go to benchmarks/results/length-penalty-NAME.json, NAME the run folder's name (and the direction).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def evaluate(model: Path, split: str, alpha: float, beam: int, direction: str | None) -> dict:
    chosen = ["--direction", direction] if direction else []
    out = subprocess.run([sys.executable, "-m", "attnlab", "--quiet", "evaluate", "--model", str(model), "--split", split,
                          "--beam", str(beam), "--length-penalty", str(alpha), *chosen],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    scores = json.loads(out)
    return {"split": split, "alpha": alpha, "bleu": round(scores["bleu"], 2), "chrf": round(scores["chrf"], 2),
            "bleu_detail": scores["bleu_detail"], "direction": scores["direction"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="a trained run directory")
    p.add_argument("--alphas", type=float, nargs="+", required=True, help="length penalties to score on dev")
    p.add_argument("--direction", default=None, help="zh-en or en-zh (a model of both directions; default: its own)")
    p.add_argument("--beam", type=int, default=4, help="beam size (default 4)")
    p.add_argument("--test-alpha", type=float, default=None, help="score the test split once, at this alpha")
    args = p.parse_args()
    rows = []
    for alpha in args.alphas:
        rows.append(evaluate(args.model, "dev", alpha, args.beam, args.direction))
        print(f"| dev | {alpha:g} | {rows[-1]['bleu']:.2f} | {rows[-1]['chrf']:.2f} | {rows[-1]['bleu_detail']} |", flush=True)
    if args.test_alpha is not None:
        rows.append(evaluate(args.model, "test", args.test_alpha, args.beam, args.direction))
        print(f"| test | {args.test_alpha:g} | {rows[-1]['bleu']:.2f} | {rows[-1]['chrf']:.2f} | {rows[-1]['bleu_detail']} |")
    name = args.model.name + (f"-{args.direction}" if args.direction else "")
    out = Path("benchmarks") / "results" / f"length-penalty-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": str(args.model), "beam": args.beam, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
