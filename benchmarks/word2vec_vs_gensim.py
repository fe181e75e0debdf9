"""attnlab's Word2Vec against gensim on the same corpus with the same settings, CBOW and skip-gram.

For each architecture both libraries train with dim 100, window 5, negative 5, min-count 5,
sample 1e-3, alpha 0.025 (gensim's default), 5 epochs and the same number of threads; then both
vector sets are scored with the same code (Google analogy restricted to the 30k most frequent
words, Spearman ρ on WordSim-353 and SimLex-999). words/s = epochs × corpus words / training
seconds, the same numerator for both; reading the corpus and building the vocabulary are timed
separately ("read s"). gensim is run in its faster corpus_file mode (and optionally also with a
LineSentence iterator, --gensim-modes both).

    python benchmarks/word2vec_vs_gensim.py --corpus ../shared/data/en-mix/en_mix.txt
"""

from __future__ import annotations

import argparse
import json
import logging
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
    t0 = time.perf_counter()
    if mode == "corpus_file":
        eff, raw = model.train(corpus_file=str(corpus), total_words=model.corpus_total_words, epochs=args.epochs)
    else:
        eff, raw = model.train(LineSentence(str(corpus)), total_examples=model.corpus_count, epochs=args.epochs)
    seconds = time.perf_counter() - t0
    wv = model.wv
    vectors = WordVectors(list(wv.index_to_key), np.asarray(wv.vectors),
                          np.array([wv.get_vecattr(w, "count") for w in wv.index_to_key]))
    return vectors, {"train_s": seconds, "read_s": read, "words": model.corpus_total_words * args.epochs,
                     "effective_words": int(eff)}


def attnlab_run(corpus: Path, arch: str, args: argparse.Namespace) -> tuple[WordVectors, dict]:
    cfg = Word2VecConfig(arch=arch, dim=args.dim, window=args.window, negative=args.negative,
                         min_count=args.min_count, sample=args.sample, epochs=args.epochs, alpha=args.alpha,
                         threads=args.threads, seed=args.seed)
    vectors, st = train(corpus, cfg, show_progress=False)
    return vectors, {"train_s": st.seconds, "read_s": st.read_seconds, "words": st.raw_words * args.epochs,
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
    p.add_argument("--gensim-modes", choices=("corpus_file", "iterator", "both"), default="iterator",
                   help="how gensim reads the corpus (iterator: LineSentence, the usual way; corpus_file mis-trains a one-line text8-style file)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    modes = ["corpus_file", "iterator"] if args.gensim_modes == "both" else [args.gensim_modes]
    rows = []
    for arch in args.archs.split(","):
        runs = {}
        vec, info = attnlab_run(args.corpus, arch, args)
        runs["attnlab"] = {**info, **scores(vec)}
        for mode in modes:
            vec, info = gensim_run(args.corpus, arch, args, mode)
            runs[f"gensim/{mode}"] = {**info, **scores(vec)}
        for name, r in runs.items():
            r["words_per_s"] = r["words"] / r["train_s"]
        base = runs[f"gensim/{modes[0]}"]
        for name, r in runs.items():
            rows.append({"arch": arch, "impl": name, **r, "ratio": r["words_per_s"] / base["words_per_s"]})
    print(f"{'arch':9} {'impl':18} {'train s':>8} {'read s':>7} {'words/s':>10} {'ratio':>6} "
          f"{'analogy':>8} {'WS353':>6} {'SL999':>6}")
    for r in rows:
        print(f"{r['arch']:9} {r['impl']:18} {r['train_s']:8.1f} {r['read_s']:7.1f} {r['words_per_s']:10,.0f} "
              f"{r['ratio']:6.2f} {100 * r['analogy']:7.2f}% {r['wordsim353']:6.3f} {r['simlex999']:6.3f}")
    print(f"threads {args.threads}, corpus {args.corpus}, words/s ratio against gensim/{modes[0]}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
