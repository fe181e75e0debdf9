"""Decoding speed of attnlab's own PyTorch decoder against CTranslate2 running the very same weights.

    python benchmarks/decode_vs_ctranslate2.py [--model runs/NAME] [--sentences 1000] [--threads 1 2]
                                               [--beams 1 4] [--quantization float32|int8] [--repeats 3]

The attnlab model (a trained run, or with no --model a random-weight model of the small size: d_model 256,
4 heads, FFN 1024, 3+3 layers, vocabulary 8000) is exported with `attnlab.export.ctranslate2` into a
temporary folder, so both engines hold identical weights. Both translate the first N distinct source
sentences of the test split (data/tatoeba-zh-en/test.tsv by default), tokenized once, in the same batches:
sorted by length, sharing one output length limit (floor(1.5 · source tokens + 10)), token-bounded.
Both search with the same length penalty, α = --length-penalty (default 0: CTranslate2's penalty is
length^α and attnlab's GNMT's ((5 + length) / 6)^α, which agree only at α = 0; then beam outputs agree too).
Each engine runs in a process of its own (two OpenMP runtimes in one process would slow each other),
gets one warm-up batch, then is timed over all batches --repeats times; ids go in and come out, so
string conversion is outside both timers (CTranslate2's piece strings are mapped from ids before its timer).

Printed per thread count and beam size: output tokens per second of each engine (tokens kept, <eos> not
counted) as the median of the repeats with their spread, the ratio attnlab / CTranslate2, sacreBLEU of
each against the references, and how many outputs are identical. A random model never says <eos>, so
every output runs to its length limit: the speed of the decoder itself, not of a model's habits.
The rows are written to benchmarks/results/decode-MODEL.json.

CTranslate2 runs with inter_threads=1 and intra_threads=--threads. Its OpenMP threads spin while they
wait for work (OMP_WAIT_POLICY's default); on a machine whose other cores are busy, a spinning thread
takes the core from the thread it waits for. --omp-passive sets OMP_WAIT_POLICY=PASSIVE in its process
to show that effect.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import multiprocessing
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from attnlab import checkpoint
from attnlab.config import Config, DataConfig, ModelConfig, TokenizerConfig
from attnlab.data.parallel import load_pairs
from attnlab.decoding import DecodeOptions
from attnlab.export.ctranslate2 import export_ctranslate2
from attnlab.metrics import score
from attnlab.model import Seq2SeqTransformer
from attnlab.tokenizer import Tokenizer
from attnlab.translate.base import length_batches
from attnlab.translate.pytorch import Translator

TOKENIZER_CACHE = Path(".cache/bench-tokenizer")  # shared with train_throughput.py


@dataclass
class Job:
    """What one engine's process needs: where the model is, and the batches of tokenized sentences."""

    engine: str  # "attnlab" or "ctranslate2"
    model_dir: Path  # the run directory (attnlab) or the CTranslate2 export
    threads: int
    opts: DecodeOptions
    batches: list[list[list[int]]]  # batches of source ids
    repeats: int
    omp_passive: bool = False  # CTranslate2's OpenMP threads sleep instead of spinning while they wait


def run_job(job: Job) -> tuple[list[list[list[int]]], list[float]]:
    """In a fresh process: load the engine, decode one warm-up batch, then every batch `repeats` times;
    (outputs, seconds of each repeat)."""
    if job.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # read when the OpenMP runtime starts: before the import
    if job.engine == "attnlab":
        from attnlab.data.batching import pad_sources
        from attnlab.decoding import search

        torch.set_num_threads(job.threads)
        model = checkpoint.load_run(job.model_dir).model

        def decode(batch: list[list[int]]) -> list[list[int]]:
            return search(model, pad_sources(batch), job.opts)
    else:
        from attnlab.translate.ctranslate2 import CT2Translator

        engine = CT2Translator.load(job.model_dir, threads=job.threads)

        def decode(batch: list[list[int]]) -> list[list[int]]:
            return engine.translate_batch(batch, job.opts)  # the batch shares one output limit

    decode(job.batches[len(job.batches) // 2])  # warm-up: allocator, thread pool, kernels
    seconds = []
    for _ in range(job.repeats):
        start = time.perf_counter()
        outputs = [decode(batch) for batch in job.batches]
        seconds.append(time.perf_counter() - start)
    return outputs, seconds


def random_run(run_dir: Path, test: str) -> Path:
    """A run directory holding a random-weight model of the small size and a Tatoeba tokenizer."""
    cfg = Config(data=DataConfig(test=test))
    if (TOKENIZER_CACHE / "joint.model").is_file():
        tok = Tokenizer.load(TOKENIZER_CACHE)
    else:
        print(f"training a tokenizer on {cfg.data.train} into {TOKENIZER_CACHE} (once)")
        tok = Tokenizer.train(load_pairs(cfg.data.train, cfg.direction).pairs, TokenizerConfig(), TOKENIZER_CACHE)
    (run_dir / checkpoint.TOKENIZER_DIR).mkdir(parents=True)
    (run_dir / checkpoint.TOKENIZER_DIR / "joint.model").write_bytes((TOKENIZER_CACHE / "joint.model").read_bytes())
    cfg = dataclasses.replace(cfg, model=ModelConfig(vocab_size=tok.vocab_size))
    torch.manual_seed(0)
    checkpoint.save_config(run_dir, cfg)
    checkpoint.save_best(run_dir, Seq2SeqTransformer(cfg.model), {})
    return run_dir


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=None, help="a trained run directory (default: random small model)")
    p.add_argument("--sentences", type=int, default=1000, help="distinct test source sentences to translate")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts of both engines")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 4], help="beam sizes to time (1: greedy)")
    p.add_argument("--length-penalty", type=float, default=0.0,
                   help="α of both engines (default 0: the only value at which their penalties agree)")
    p.add_argument("--quantization", default="float32", choices=["float32", "int8"],
                   help="CTranslate2 weights (int8 pays off only on CPUs with AVX-512 VNNI)")
    p.add_argument("--test", default="data/tatoeba-zh-en/test.tsv", help="test pairs (random model only)")
    p.add_argument("--max-tokens", type=int, default=6000, help="batch budget: rows × (source + output) tokens")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per engine; the row is their median")
    p.add_argument("--omp-passive", action="store_true", help="CTranslate2's OpenMP threads sleep while they wait")
    p.add_argument("--json", type=Path, default=None, help="where to write the rows (default benchmarks/results/decode-MODEL.json)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    spawn = multiprocessing.get_context("spawn")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.model or random_run(Path(tmp) / "random", args.test)
        ct2_dir = export_ctranslate2(run_dir, Path(tmp) / "ct2", None if args.quantization == "float32" else "int8")
        ours = Translator.load(run_dir)
        cfg = ours.cfg
        groups = load_pairs(cfg.data.test, cfg.direction).references()[: args.sentences]
        src_ids = ours.encode([src for src, _ in groups])
        refs = [r for _, r in groups]
        print(f"model: {args.model or 'random weights, small size'}; {len(groups)} sentences, "
              f"{sum(map(len, src_ids))} source tokens; length penalty {args.length_penalty:g}; "
              f"CTranslate2 {args.quantization}{', OMP_WAIT_POLICY=PASSIVE' if args.omp_passive else ''}; "
              f"torch {torch.__version__}; median of {args.repeats}")
        print(f"{'threads':>7} {'beam':>4} {'attnlab tok/s':>22} {'CT2 tok/s':>22} {'ratio':>6} {'BLEU attnlab':>13} "
              f"{'BLEU CT2':>9} {'identical':>10}")
        for threads in args.threads:
            for beam in args.beams:
                opts = dataclasses.replace(ours.options(beam), length_penalty=args.length_penalty)
                order = length_batches(src_ids, opts, args.max_tokens, one_limit=True)
                batches = [[src_ids[i] for i in b] for b in order]
                results = {}
                for engine, model_dir in (("attnlab", run_dir), ("ctranslate2", ct2_dir)):
                    with spawn.Pool(1) as pool:
                        results[engine] = pool.apply(run_job, (Job(engine, model_dir, threads, opts, batches,
                                                                   args.repeats, args.omp_passive),))
                row = {"threads": threads, "beam": beam, "length_penalty": args.length_penalty}
                outputs = {}
                for engine, (batch_outputs, seconds) in results.items():
                    out: list[list[int]] = [[] for _ in src_ids]
                    for b, hyps in zip(order, batch_outputs):
                        for i, hyp in zip(b, hyps):
                            out[i] = hyp
                    tokens = sum(map(len, out))
                    speeds = [tokens / s for s in seconds]
                    outputs[engine] = out
                    row[engine] = {"tok_s": statistics.median(speeds), "tok_s_min": min(speeds),
                                   "tok_s_max": max(speeds),
                                   "bleu": score(ours.tokenizer.decode_tgt(out), refs, cfg.tgt_lang).bleu}
                row["identical"] = sum(x == y for x, y in zip(outputs["attnlab"], outputs["ctranslate2"]))
                row["sentences"] = len(src_ids)
                a, c = row["attnlab"], row["ctranslate2"]
                row["ratio"] = a["tok_s"] / c["tok_s"]
                rows.append(row)
                def spread(r: dict) -> str:
                    return f"{r['tok_s']:.0f} ({r['tok_s_min']:.0f}-{r['tok_s_max']:.0f})"

                print(f"{threads:>7} {beam:>4} {spread(a):>22} {spread(c):>22} {row['ratio']:>5.2f}x "
                      f"{a['bleu']:>13.2f} {c['bleu']:>9.2f} {row['identical']:>5}/{len(src_ids)}")
    name = args.model.name if args.model else "random"
    out_path = args.json or Path("benchmarks/results") / f"decode-{name}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"model": str(args.model or "random"), "sentences": len(src_ids),
                                    "quantization": args.quantization, "omp_passive": args.omp_passive,
                                    "repeats": args.repeats, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
