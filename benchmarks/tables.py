"""Regenerate BENCHMARKS.md's generated tables from the JSON that the benchmark scripts write.

    python benchmarks/tables.py            # print the tables
    python benchmarks/tables.py --write    # replace each <!-- NAME:begin --> ... <!-- NAME:end --> block

Tables: `quality` (every benchmarks/results/quality-*.json from benchmarks/quality.py, in the order
of the `rows` list in benchmarks/results/quality-order.txt, then any others by name), `throughput`
(throughput-*.json from train_throughput.py), `decoding` (decode-*.json from decode_vs_ctranslate2.py),
`serving` (serve.json from serve_load.py) and `word2vec` (word2vec.json from word2vec_vs_gensim.py).
A figure in a generated block always comes from a result file, never from hand-editing; a table whose
result files are missing is left as it stands.
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
    names = [n for n in order_file.read_text().split() if n in rows] if order_file.is_file() else []
    names += [n for n in sorted(rows) if n not in names]  # rows the order file does not list yet come last
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


def _result(name: str) -> dict | None:
    """A result file of benchmarks/results, or None when that benchmark has not been run."""
    f = RESULTS / name
    return json.loads(f.read_text()) if f.is_file() else None


def _spread(r: dict, key: str, fmt: str = "{:,.0f}") -> str:
    """A median with its min-max spread: '3,076 (2,990-3,120)'."""
    return f"{fmt.format(r[key])} ({fmt.format(r[key + '_min'])}–{fmt.format(r[key + '_max'])})"


def throughput_table() -> str | None:
    files = [f for b in ("synthetic", "tatoeba") if (f := RESULTS / f"throughput-{b}.json").is_file()]
    if not files:
        return None
    lines = ["| batches | model | target tok/s, median (min–max) | GFLOP/s | MFU | ratio |", "|---|---|---|---|---|---|"]
    for f in files:
        run = json.loads(f.read_text())
        label = {"synthetic": "synthetic 128×32", "tatoeba": "Tatoeba 4,096-token buckets"}[run["batches"]]
        for i, r in enumerate(run["rows"]):
            first = (f"{label} ({run['threads']} threads, peak {run['peak_gflops']:.0f} GFLOP/s, "
                     f"median of {run['repeats']})") if i == 0 else ""
            name, ratio = f"{r['model']} ({r['kind']})", f"{r['ratio']:.2f}×"
            if r["kind"].startswith("like for like"):
                name, ratio = f"**{name}**", f"**{ratio}**"
            lines.append(f"| {first} | {name} | {_spread(r, 'tok_s')} | {r['gflops']:.1f} | {100 * r['mfu']:.1f} % | {ratio} |")
    return "\n".join(lines)


def decoding_table() -> str | None:
    files = sorted(RESULTS.glob("decode-*.json"))
    if not files:
        return None
    lines = ["| model | threads | search | attnlab tok/s, median (min–max) | CTranslate2 tok/s | ratio | BLEU attnlab | "
             "BLEU CT2 | identical |", "|---|---|---|---|---|---|---|---|---|"]
    for f in files:
        run = json.loads(f.read_text())
        for r in run["rows"]:
            search = "greedy" if r["beam"] == 1 else f"beam {r['beam']}, α {r['length_penalty']:g}"
            a, c = r["attnlab"], r["ctranslate2"]
            model = run["model"] + (", CT2 with OMP_WAIT_POLICY=PASSIVE" if run.get("omp_passive") else "")
            lines.append(f"| {model} | {r['threads']} | {search} | {_spread(a, 'tok_s')} | {_spread(c, 'tok_s')} | "
                         f"**{r['ratio']:.2f}×** | {a['bleu']:.2f} | {c['bleu']:.2f} | {r['identical']}/{r['sentences']} |")
    return "\n".join(lines)


def serving_table() -> str | None:
    if (run := _result("serve.json")) is None:
        return None
    lines = ["| pair | mode | sentences/s | p50 ms | p95 ms | p99 ms | sentences per call | server CPU ms/sentence | errors |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, pair in enumerate(run["pairs"], 1):
        for mode in ("on", "off"):
            m = pair[mode]
            lines.append(f"| {i} | {m['mode']} | {m['sentences_s']:.1f} | {m['p50_ms']:.0f} | {m['p95_ms']:.0f} | "
                         f"{m['p99_ms']:.0f} | {m['mean_batch']:.1f} | {m['server_cpu_ms_per_sentence']:.1f} | {m['errors']} |")
    lines.append(f"| **median of {len(run['pairs'])}** | on / off | **{run['median_ratio']:.2f}×** "
                 f"({run['ratio_min']:.2f}–{run['ratio_max']:.2f}) | | | | | | {run['errors']} |")
    return "\n".join(lines)


def word2vec_table() -> str | None:
    if (run := _result("word2vec.json")) is None:
        return None
    lines = ["| arch | impl | whole job s, median (min–max) | of it reading s | words/s | ratio | analogy | WordSim-353 | SimLex-999 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in run["rows"]:
        ratio = f"{r['ratio']:.2f}×" if r["impl"] != r["against"] else "1.00 (faster gensim mode)"
        lines.append(f"| {r['arch']} | {r['impl']} | {_spread(r, 'job_s', '{:.1f}')} | {r['read_s']:.1f} | "
                     f"{r['words_per_s']:,.0f} | {ratio} | {100 * r['analogy']:.2f} % | {r['wordsim353']:.3f} | "
                     f"{r['simlex999']:.3f} |")
    return "\n".join(lines)


TABLES = {"quality": quality_table, "throughput": throughput_table, "decoding": decoding_table,
          "serving": serving_table, "word2vec": word2vec_table}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="rewrite the generated blocks of BENCHMARKS.md in place")
    args = p.parse_args()
    doc_path = ROOT / "BENCHMARKS.md"
    doc = doc_path.read_text(encoding="utf-8")
    for name, build in TABLES.items():
        table = build()
        if table is None:
            print(f"## {name}: no result files; left as it stands\n")
            continue
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
