"""attnlab's own decoding, before and after a change: target tokens per second of greedy and beam-4 search
at two (or more) git revisions, on the same model and test sentences, one thread, in turns.

    taskset -c 0 python benchmarks/decode_time.py --refs 7a5c260 HEAD --model runs/NAME [--model-at 7a5c260=DIR]

Each revision's `attnlab` package is extracted with `git archive` (as benchmarks/step_time.py does) and run
in its own process: it loads the run with its own `Translator.load`, encodes the first `--sentences`
distinct Chinese test sentences, translates 50 untimed, then times `translate_ids` with beam 1 and beam 4
(the run's length penalty and output limit). An older revision may not read a newer run's config.toml:
`--model-at REF=DIR` gives it a copy of the run whose config holds only the keys it knows (the weights
are the same file). The outputs' hash shows both revisions produced the same tokens. The row gives the
median and the spread (min-max) of `--repeats` turns; rows go to benchmarks/results/revisions-decode.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from step_time import ROOT, extract

WORKER = r"""
import hashlib, json, sys, time
import torch
torch.set_num_threads(1)
try:
    from attnlab.translate.pytorch import Translator
except ImportError:  # before the translate/ package
    from attnlab.translate.pytorch import Translator
from attnlab.data.parallel import load_pairs

run, n = sys.argv[1], int(sys.argv[2])
translator = Translator.load(run)
sources = list(dict.fromkeys(zh for zh, _ in load_pairs("data/tatoeba-zh-en/test.tsv", "zh-en").pairs))[:n]
ids = translator.encode(sources)
translator.translate_ids(ids[:50], 4)
out = {}
for beam in (1, 4):
    t0 = time.perf_counter()
    hyps = translator.translate_ids(ids, beam)
    seconds = time.perf_counter() - t0
    out[beam] = {"tok_s": sum(len(h) for h in hyps) / seconds,
                 "hash": hashlib.sha1(json.dumps(hyps).encode()).hexdigest()[:12]}
print(json.dumps(out))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--refs", nargs="+", required=True, help="git revisions to compare; the first is the baseline")
    p.add_argument("--model", required=True, help="a trained zh->en run directory")
    p.add_argument("--model-at", action="append", default=[], metavar="REF=DIR",
                   help="the run as a revision reads it (its config without the keys it does not know)")
    p.add_argument("--sentences", type=int, default=1000, help="distinct test sentences to translate")
    p.add_argument("--repeats", type=int, default=3, help="runs per revision (the row is their median)")
    p.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/revisions-decode.json", help="where to write the rows")
    args = p.parse_args()
    models = {ref: args.model for ref in args.refs} | dict(m.split("=", 1) for m in args.model_at)
    runs: dict[str, list[dict]] = {ref: [] for ref in args.refs}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {ref: extract(ref, Path(tmp)) for ref in args.refs}
        for rep in range(args.repeats):  # in turns, so that a change in the machine's load falls on all of them
            for ref in args.refs:
                done = subprocess.run([sys.executable, "-c", WORKER, models[ref], str(args.sentences)], cwd=ROOT,
                                      env=dict(os.environ, PYTHONPATH=str(trees[ref])), capture_output=True, text=True)
                if done.returncode:
                    sys.exit(f"decode_time: the run of {ref} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
                runs[ref].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"repeat {rep + 1}: {ref} " + ", ".join(f"beam {b} {r['tok_s']:,.0f} tok/s"
                                                            for b, r in runs[ref][-1].items()), flush=True)
    rows = []
    for ref in args.refs:
        for beam in ("1", "4"):
            speeds = [r[beam]["tok_s"] for r in runs[ref]]
            rows.append({"ref": ref, "beam": int(beam), "tok_s": statistics.median(speeds), "min": min(speeds),
                         "max": max(speeds), "hashes": sorted({r[beam]["hash"] for r in runs[ref]})})
    print("\n| revision | search | target tok/s, median (min-max) | speed | output hash |\n|---|---|---|---|---|")
    for r in rows:
        base = next(b for b in rows if b["beam"] == r["beam"])
        r["speed"] = r["tok_s"] / base["tok_s"]
        print(f"| {r['ref']} | {'greedy' if r['beam'] == 1 else 'beam 4'} | {r['tok_s']:,.0f} ({r['min']:,.0f}-"
              f"{r['max']:,.0f}) | {r['speed']:.2f}x | {', '.join(r['hashes'])} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": args.model, "sentences": args.sentences, "repeats": args.repeats,
                                     "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
