"""attnlab's Word2Vec against gensim on the same corpus with the same settings, CBOW and skip-gram.

For each architecture both libraries train with dim 100, window 5, negative 5, min-count 5,
sample 1e-3, the same start learning rate (--alpha, default 0.025: gensim's default; attnlab's own
`--alpha auto` would give CBOW 0.05), 5 epochs and the same number of threads; then both vector sets
are scored with the same code (Google analogy restricted to the 30k most frequent words, Spearman ρ
on WordSim-353 and SimLex-999).

Each side is timed as a whole job: reading the corpus, building the vocabulary, encoding and training
(attnlab's `train()` call; gensim's `build_vocab` + `train`). gensim runs in both of its modes: a
`LineSentence` iterator over the file (the usual way; it splits lines into 10,000-word sentences) and
`corpus_file`, on a copy of the corpus split into lines of 10,000 words (made once, outside the timers:
corpus_file mis-trains a one-line text8-style file). The ratio is against gensim's faster mode.
words/s = epochs × corpus words / whole-job seconds, the same numerator for all. Every job runs
`--repeats` times, taking turns; the row is the median and its spread (min-max), the scores those of
the first repeat. The rows are written to benchmarks/results/word2vec.json.

    python benchmarks/word2vec_vs_gensim.py --corpus ../shared/data/en-mix/en_mix.txt
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import numpy as np

from attnlab.word2vec import evaluate
from attnlab.word2vec.config import Word2VecConfig
from attnlab.word2vec.train import train
from attnlab.word2vec.vectors import WordVectors


def gensim_run(corpus: Path, arch: str, args: argparse.Namespace, mode: str) -> tuple[WordVectors, dict]:
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    kw = dict(vector_size=args.dim, window=args.window, min_count=args.min_count, sample=args.sample,
              negative=args.negative, hs=0, sg=int(arch == "skipgram"), workers=args.threads, alpha=args.alpha,
              seed=args.seed, epochs=args.epochs)
    t0 = time.perf_counter()
    model = Word2Vec(**kw)
    if mode == "corpus_file":
        model.build_vocab(corpus_file=str(corpus))
    else:
        model.build_vocab(LineSentence(str(corpus)))
    read = time.perf_counter() - t0
    if mode == "corpus_file":
        eff, raw = model.train(corpus_file=str(corpus), total_words=model.corpus_total_words, epochs=args.epochs)
    else:
        eff, raw = model.train(LineSentence(str(corpus)), total_examples=model.corpus_count, epochs=args.epochs)
    job = time.perf_counter() - t0
    wv = model.wv
    vectors = WordVectors(list(wv.index_to_key), np.asarray(wv.vectors),
                          np.array([wv.get_vecattr(w, "count") for w in wv.index_to_key]))
    return vectors, {"job_s": job, "read_s": read, "words": model.corpus_total_words * args.epochs,
                     "effective_words": int(eff)}


def line_split_copy(corpus: Path, words_per_line: int = 10_000) -> Path:
    """The corpus re-cut into lines of at most `words_per_line` words (what LineSentence feeds gensim), for
    gensim's corpus_file mode; cached beside the benchmark's other files."""
    out = Path(".cache") / f"{corpus.stem}.lines{words_per_line}.txt"
    if out.is_file() and out.stat().st_mtime >= corpus.stat().st_mtime:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(corpus, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
        for line in src:
            words = line.split()
            for i in range(0, len(words), words_per_line):
                dst.write(" ".join(words[i:i + words_per_line]) + "\n")
    tmp.replace(out)
    return out


def attnlab_run(corpus: Path, arch: str, args: argparse.Namespace) -> tuple[WordVectors, dict]:
    cfg = Word2VecConfig(arch=arch, dim=args.dim, window=args.window, negative=args.negative,
                         min_count=args.min_count, sample=args.sample, epochs=args.epochs, alpha=args.alpha,
                         threads=args.threads, seed=args.seed)
    t0 = time.perf_counter()
    vectors, st = train(corpus, cfg, show_progress=False)
    job = time.perf_counter() - t0
    return vectors, {"job_s": job, "read_s": st.read_seconds, "words": st.raw_words * args.epochs,
                     "effective_words": st.effective_words}


def scores(vectors: WordVectors) -> dict:
    files = evaluate.eval_files()
    return {"analogy": evaluate.analogy(vectors, files["analogy"], restrict=30_000).accuracy,
            "wordsim353": evaluate.similarity(vectors, files["wordsim353"]).spearman,
            "simlex999": evaluate.similarity(vectors, files["simlex999"]).spearman}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True, help="text file (one sentence per line, or text8 style)")
    p.add_argument("--archs", default="cbow,skipgram", help="comma-separated: cbow, skipgram")
    p.add_argument("--threads", type=int, default=2, help="worker threads for both libraries")
    p.add_argument("--epochs", type=int, default=5, help="passes over the corpus")
    p.add_argument("--dim", type=int, default=100, help="vector size")
    p.add_argument("--window", type=int, default=5, help="context window")
    p.add_argument("--negative", type=int, default=5, help="noise words per pair")
    p.add_argument("--min-count", type=int, default=5, help="drop rarer words")
    p.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold")
    p.add_argument("--alpha", type=float, default=0.025, help="start learning rate (gensim's default)")
    p.add_argument("--seed", type=int, default=1, help="random seed for both")
    p.add_argument("--repeats", type=int, default=3, help="timings per job (the row is their median)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/word2vec.json"), help="where to write the rows")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    jobs = {"attnlab": lambda arch: attnlab_run(args.corpus, arch, args),
            "gensim/iterator": lambda arch: gensim_run(args.corpus, arch, args, "iterator"),
            "gensim/corpus_file": lambda arch, lines=line_split_copy(args.corpus): gensim_run(lines, arch, args, "corpus_file")}
    rows = []
    for arch in args.archs.split(","):
        runs: dict[str, dict] = {}
        for repeat in range(args.repeats):  # the jobs take turns, so a change in load falls on all of them
            for name, job in jobs.items():
                vec, info = job(arch)
                if name not in runs:  # the first repeat's vectors are the ones scored
                    runs[name] = {**info, **scores(vec), "job_s_all": []}
                runs[name]["job_s_all"].append(info["job_s"])
        for r in runs.values():
            r["job_s"] = statistics.median(r["job_s_all"])
            r["job_s_min"], r["job_s_max"] = min(r["job_s_all"]), max(r["job_s_all"])
            r["words_per_s"] = r["words"] / r["job_s"]
        fastest = max((n for n in runs if n.startswith("gensim")), key=lambda n: runs[n]["words_per_s"])
        for name, r in runs.items():
            rows.append({"arch": arch, "impl": name, **r, "ratio": r["words_per_s"] / runs[fastest]["words_per_s"],
                         "against": fastest})
    print(f"{'arch':9} {'impl':19} {'job s (min-max)':>18} {'read s':>7} {'words/s':>10} {'ratio':>6} "
          f"{'analogy':>8} {'WS353':>6} {'SL999':>6}")
    for r in rows:
        spread = f"{r['job_s']:.1f} ({r['job_s_min']:.1f}-{r['job_s_max']:.1f})"
        print(f"{r['arch']:9} {r['impl']:19} {spread:>18} {r['read_s']:7.1f} {r['words_per_s']:10,.0f} "
              f"{r['ratio']:6.2f} {100 * r['analogy']:7.2f}% {r['wordsim353']:6.3f} {r['simlex999']:6.3f}")
    print(f"threads {args.threads}, corpus {args.corpus}, median of {args.repeats}; "
          f"words/s ratio against gensim's faster mode")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"corpus": str(args.corpus), "threads": args.threads, "alpha": args.alpha,
                                     "epochs": args.epochs, "repeats": args.repeats, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
