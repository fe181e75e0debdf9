"""Back-translation: English lines -> machine Chinese with an en->zh model, timed, for `data.extra`.

    attnlab data fetch dialogues                    # data/dialogues/en.txt
    taskset -c 0 python benchmarks/backtranslate.py --model runs/quality-e60-NAME [--beam 1] [--limit N]
    taskset -c 0 python benchmarks/quality.py --name z60-bt --config configs/zh-en-small.toml --minutes 60 \
        --set data.extra=data/dialogues/zh.txt,data/dialogues/en.txt

Writes the translations (one line per input line) to --out and, beside them, the English lines that were
translated (--limit takes the first N), so that the two files align; the CPU time the translation took is
its own budget, reported apart from the training budget (benchmarks/results/backtranslate-NAME.json, with
the fp32 matmul peak measured first, as quality.py does). One thread by default: the reference-budget
emulation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attnlab.errors import AttnlabError  # noqa: E402
from attnlab.fileio import atomic_write_text, read_utf8  # noqa: E402
from attnlab.hardware import matmul_peak  # noqa: E402
from attnlab.translate import load_engine  # noqa: E402

CHUNK = 512  # lines a call: the translator batches them by length


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True, help="a trained en-zh run directory")
    p.add_argument("--input", type=Path, default=Path("data/dialogues/en.txt"),
                   help="English lines (default: data/dialogues/en.txt)")
    p.add_argument("--out", type=Path, default=Path("data/dialogues/zh.txt"),
                   help="Chinese translations to write; the English lines used go beside it as "
                        "OUT's folder/en-used.txt when --limit cuts them (default: data/dialogues/zh.txt)")
    p.add_argument("--beam", type=int, default=1, help="beam size (default 1: greedy, the cheap setting)")
    p.add_argument("--limit", type=int, default=0, help="translate only the first N lines (default 0: all)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the reference-budget emulation)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    lines = read_utf8(args.input, "English lines").splitlines()
    if args.limit:
        lines = lines[: args.limit]
    translator = load_engine("attnlab", args.model)
    if translator.cfg.direction != "en-zh":
        sys.exit(f"backtranslate.py: {args.model} translates {translator.cfg.direction}; back-translation for "
                 "zh-en training needs an en-zh model")
    args.out.parent.mkdir(parents=True, exist_ok=True)  # before the translation, not after it
    gflops = round(matmul_peak(0.5) / 1e9, 1)
    out: list[str] = []
    start = time.process_time()
    wall = time.perf_counter()
    for i in tqdm(range(0, len(lines), CHUNK), unit="chunk", desc="back-translating"):
        out.extend(translator.translate(lines[i:i + CHUNK], args.beam))
    cpu_s, wall_s = time.process_time() - start, time.perf_counter() - wall
    atomic_write_text(args.out, "".join(line + "\n" for line in out))
    english = args.input
    if args.limit:
        english = args.out.parent / "en-used.txt"
        atomic_write_text(english, "".join(line + "\n" for line in lines))
    record = {"model": str(args.model), "input": str(args.input), "lines": len(lines), "beam": args.beam,
              "threads": args.threads, "cpu_minutes": round(cpu_s / 60, 2), "wall_minutes": round(wall_s / 60, 2),
              "gflops": gflops, "zh": str(args.out), "en": str(english),
              "extra": f"data.extra={args.out},{english}"}
    results = ROOT / "benchmarks" / "results" / f"backtranslate-{args.model.name}.json"
    results.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps(record, ensure_ascii=False))


if __name__ == "__main__":
    try:
        main()
    except AttnlabError as e:  # a missing input or model folder: one line, not a traceback
        sys.exit(f"backtranslate.py: {e}")
