"""`attnlab w2v ...`: train Word2Vec, query neighbours and analogies, evaluate.

Only wiring: the algorithms live in attnlab.word2vec.{corpus,sampling,kernels,train,evaluate}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from attnlab.errors import AttnlabError

log = logging.getLogger("attnlab")


def _alpha(value: str) -> float | None:
    if value == "auto":
        return None
    try:
        return float(value)  # a positive one: Word2VecConfig checks
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("w2v", help="Word2Vec: train CBOW / skip-gram vectors, neighbours, analogies, evaluation")
    wsub = p.add_subparsers(dest="w2v_command", required=True, metavar="COMMAND")

    t = wsub.add_parser("train", help="train word vectors on a text file",
                        description="Train CBOW or skip-gram with negative sampling (Mikolov et al. 2013). "
                                    "Writes DIR/vectors.safetensors + vocab.tsv, vectors.txt and vectors.bin "
                                    "(word2vec formats) and config.json.")
    t.add_argument("--corpus", type=Path, required=True,
                   help="UTF-8 text: one sentence per line, or one huge line (text8); tokens split on whitespace")
    t.add_argument("--out", type=Path, required=True, help="folder to write the vectors into")
    t.add_argument("--arch", choices=("cbow", "skipgram"), default="cbow", help="model (default cbow)")
    t.add_argument("--dim", type=int, default=100, help="vector size (default 100)")
    t.add_argument("--window", type=int, default=5, help="largest context distance (default 5)")
    t.add_argument("--negative", type=int, default=5, help="noise words per pair; 0 needs --hs (default 5)")
    t.add_argument("--hs", action="store_true", help="also train with hierarchical softmax")
    t.add_argument("--min-count", type=int, default=5, help="drop words seen fewer times (default 5)")
    t.add_argument("--max-vocab", type=int, default=None, help="keep only the N most frequent words")
    t.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold for frequent words (default 1e-3; 0 = off)")
    t.add_argument("--epochs", type=int, default=5, help="passes over the corpus (default 5)")
    t.add_argument("--alpha", type=_alpha, default=None, metavar="auto|RATE",
                   help="start learning rate, decaying linearly to rate·1e-4 (auto: 0.05 CBOW, 0.025 skip-gram)")
    t.add_argument("--threads", type=int, default=None, help="worker threads (default: all cores)")
    t.add_argument("--seed", type=int, default=1, help="random seed; with --threads 1 the result is deterministic")
    t.add_argument("--segment", choices=("none", "jieba"), default="none",
                   help="jieba: segment raw Chinese text into words first (default: none, split on whitespace)")
    t.set_defaults(func=cmd_train)

    s = wsub.add_parser("similar", help="nearest words by cosine")
    s.add_argument("words", nargs="+", help="one or more query words")
    s.add_argument("-n", type=int, default=10, help="how many neighbours (default 10)")
    s.set_defaults(func=cmd_similar)

    a = wsub.add_parser("analogy", help="a is to b as c is to ? (3CosAdd: b - a + c)")
    a.add_argument("a", help="e.g. man")
    a.add_argument("b", help="e.g. king")
    a.add_argument("c", help="e.g. woman")
    a.add_argument("-n", type=int, default=5, help="how many answers (default 5)")
    a.set_defaults(func=cmd_analogy)

    e = wsub.add_parser("eval", help="Google analogy accuracy and WordSim-353 / SimLex-999 Spearman, as JSON")
    e.add_argument("--analogy", type=Path, default=None, help="questions-words file (default: the copy in gensim's wheel)")
    e.add_argument("--similarity", type=Path, action="append", default=None,
                   help="word-pair file `w1 TAB w2 TAB score` (repeatable; default: WordSim-353 and SimLex-999)")
    e.add_argument("--restrict", type=int, default=30_000,
                   help="answer analogies among the N most frequent words (default 30000, as gensim's restrict_vocab)")
    e.set_defaults(func=cmd_eval)

    for q in (s, a, e):  # the queries all read a vectors folder
        q.add_argument("--vectors", type=Path, required=True, help="vectors folder (or a word2vec .txt/.bin file)")


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from attnlab.word2vec.config import Word2VecConfig
    from attnlab.word2vec.train import train

    # each flag sets the field of its name (--min-count: min_count), which is how an error names the flag back
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(Word2VecConfig) if hasattr(args, f.name)}
    cfg = Word2VecConfig(**{**flags, "threads": args.threads or os.cpu_count() or 1})
    if not args.corpus.is_file():
        raise AttnlabError(f"{args.corpus}: no such corpus file")
    vectors, stats = train(args.corpus, cfg, segment=args.segment)
    config = {"word2vec": dataclasses.asdict(cfg), "corpus": str(args.corpus), "segment": args.segment,
              "vocabulary": len(vectors), "corpus_words": stats.raw_words, "trained_words": stats.trained_words,
              "effective_words": stats.effective_words, "train_seconds": round(stats.seconds, 2),
              "words_per_second": round(stats.words_per_second), "final_loss": round(stats.loss, 5)}
    vectors.save(args.out, config=config)
    log.info("%d words × %d dims, %.0f words/s, loss %.4f -> %s", len(vectors), vectors.dim,
             stats.words_per_second, stats.loss, args.out)
    return 0


def _load(path: Path):
    from attnlab.word2vec.vectors import WordVectors

    return WordVectors.load(path)


def _print_neighbours(rows: list[tuple[str, float]]) -> None:
    for word, score in rows:
        print(f"{word}\t{score:.4f}")


def cmd_similar(args: argparse.Namespace) -> int:
    vectors = _load(args.vectors)
    unknown = vectors.missing(args.words)
    for w in unknown:
        print(f"attnlab: unknown word: {w}", file=sys.stderr)
    known = [w for w in args.words if w in vectors]
    for w in known:
        if len(known) > 1:
            print(f"# {w}")
        _print_neighbours(vectors.most_similar([w], topn=args.n))
    return 1 if unknown else 0


def cmd_analogy(args: argparse.Namespace) -> int:
    vectors = _load(args.vectors)
    unknown = vectors.missing([args.a, args.b, args.c])
    if unknown:
        raise AttnlabError(f"unknown word{'s' if len(unknown) > 1 else ''}: {' '.join(unknown)}")
    _print_neighbours(vectors.analogy(args.a, args.b, args.c, topn=args.n))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from attnlab.word2vec import evaluate

    vectors = _load(args.vectors)
    defaults = None
    if args.analogy is None or args.similarity is None:
        defaults = evaluate.eval_files()
    analogy_file = args.analogy or defaults["analogy"]
    sim_files = args.similarity or [defaults["wordsim353"], defaults["simlex999"]]
    result = {"vectors": str(args.vectors), "vocabulary": len(vectors), "dim": vectors.dim}
    an = evaluate.analogy(vectors, analogy_file, restrict=args.restrict)
    result["analogy"] = {"file": str(analogy_file), "restrict": args.restrict, **dataclasses.asdict(an)}
    for path in sim_files:
        sim = evaluate.similarity(vectors, path)
        result[Path(path).stem] = {"file": str(path), **dataclasses.asdict(sim)}
        if sim.unknown:
            log.info("%s: %d of %d pairs have an unknown word", path, sim.unknown, sim.unknown + sim.pairs)
    if an.unknown:
        log.info("%s: %d of %d questions have a word outside the %d most frequent", analogy_file, an.unknown,
                 an.unknown + an.answered, args.restrict)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0
