"""Regenerate BENCHMARKS.md's generated tables from the JSON that the benchmark scripts write.

    python benchmarks/tables.py            # print the tables
    python benchmarks/tables.py --write    # replace each <!-- NAME:begin --> ... <!-- NAME:end --> block

Tables: `quality` (every benchmarks/results/quality-*.json from benchmarks/quality.py, in the order
of the `rows` list in benchmarks/results/quality-order.txt when it exists, else by name). A figure
in a generated block always comes from a result file, never from hand-editing.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def quality_table() -> str:
    rows = {p.stem.removeprefix("quality-"): json.loads(p.read_text()) for p in sorted(RESULTS.glob("quality-*.json"))}
    order_file = RESULTS / "quality-order.txt"
    names = [n for n in order_file.read_text().split() if n in rows] if order_file.is_file() else sorted(rows)
    lines = ["| row | direction | settings | budget | steps | dev BLEU | test BLEU | test chrF | GFLOP/s × threads |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in names:
        r = rows[name]
        steps_limit = next((s.split("=")[1] for s in r["overrides"] if s.startswith("train.max_steps=")), None)
        budget = f"{steps_limit} steps" if steps_limit else f"{r['minutes']:g} min"
        direction = r.get("direction", "zh-en")
        lines.append(f"| {name} | {direction} | {r['settings']} | "
                     f"{budget} | {r['steps']} | {_fmt(r.get('dev_bleu'))} | {_fmt(r.get('test_bleu'))} | "
                     f"{_fmt(r.get('test_chrf'))} | {r['gflops']:.0f} × {r['threads']} |")
    return "\n".join(lines)


TABLES = {"quality": quality_table}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="rewrite the generated blocks of BENCHMARKS.md in place")
    args = p.parse_args()
    doc_path = ROOT / "BENCHMARKS.md"
    doc = doc_path.read_text(encoding="utf-8")
    for name, build in TABLES.items():
        table = build()
        print(f"## {name}\n{table}\n")
        block = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
        if args.write:
            if not block.search(doc):
                raise SystemExit(f"BENCHMARKS.md has no <!-- {name}:begin --> ... <!-- {name}:end --> block")
            doc = block.sub(lambda m: m.group(1) + table + "\n" + m.group(2), doc)
    if args.write:
        doc_path.write_text(doc, encoding="utf-8")


if __name__ == "__main__":
    main()
