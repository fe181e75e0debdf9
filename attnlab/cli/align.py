"""`attnlab align`: fit, query and score an alignment of two word-vector sets.

    attnlab align fit --src ZH_VECTORS --tgt EN_VECTORS --dict train.tsv --out DIR [--refine N] [--max-vocab 50000]
    attnlab align --src ZH_VECTORS --tgt EN_VECTORS --dict train.tsv --out DIR ...   (the same as `fit`)
    attnlab align translate --aligned DIR 猫 书 跑 [--reverse] [--method csls|cosine] [-n 5] [--json]
    attnlab align eval --aligned DIR --dict test.tsv
    attnlab align joint ... / attnlab align lexicon ...   (from parallel sentences: attnlab/cli/align_joint.py)
    attnlab align sentences --model RUN ...              (sentence retrieval: attnlab/cli/align_sentences.py)

The alignment itself is `attnlab.align`'s. Vectors are a vectors folder or a word2vec .txt/.bin file. Fitting
follows Artetxe et al. 2016 / Conneau et al. 2018 (see attnlab/align/procrustes.py); fit and eval print one
line of JSON, translate one line per word.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from attnlab.cli.align_joint import register_joint
from attnlab.cli.align_sentences import register_sentences
from attnlab.cli.common import print_json
from attnlab.errors import AttnlabError

FIT_OPTIONS = ("src", "tgt", "dict", "out")


def _add_fit_args(p: argparse.ArgumentParser) -> None:
    """The fit options, on `align` and on `align fit`. They default to absent (AlignConfig holds the
    defaults), so that the top-level parser never overwrites what was given to the subcommand."""
    kw = {"default": argparse.SUPPRESS}
    p.add_argument("--src", type=Path, help="source (Chinese) vectors: a vectors folder or word2vec .txt/.bin", **kw)
    p.add_argument("--tgt", type=Path, help="target (English) vectors, the same dimension", **kw)
    p.add_argument("--dict", type=Path, help="seed dictionary, `src TAB tgt` per line (e.g. data/cedict/train.tsv)", **kw)
    p.add_argument("--out", type=Path, help="aligned folder to write", **kw)
    p.add_argument("--refine", type=int, help="rounds of self-learning refinement (default 0)", **kw)
    p.add_argument("--max-vocab", type=int, help="most frequent words kept per side, 0 = all (default 50000)", **kw)
    p.add_argument("--refine-vocab", type=int, help="words per side searched for refinement pairs (default 15000)",
                   **kw)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `align` (with `fit`, `translate`, `eval`, `joint`, `lexicon` and `sentences`) to the `attnlab` parser."""
    p = sub.add_parser("align", help="map Chinese and English word vectors into one space; translate words",
                       description="Align two word-vector sets with orthogonal Procrustes (fit, translate, eval), "
                                   "train one space over both languages from parallel sentences (joint), read a "
                                   "lexicon from a model's cross-attention (lexicon), or find sentences by meaning "
                                   "(sentences). `attnlab align --src ...` is short for `attnlab align fit --src ...`.")
    _add_fit_args(p)
    p.set_defaults(func=cmd_align_fit)
    asub = p.add_subparsers(dest="align_command", required=False, metavar="COMMAND")

    f = asub.add_parser("fit", help="fit the mapping on a seed dictionary and write an aligned folder")
    _add_fit_args(f)
    f.set_defaults(func=cmd_align_fit)

    t = asub.add_parser("translate", help="nearest-neighbour translations of words through the aligned space")
    t.add_argument("--aligned", type=Path, required=True, help="aligned folder written by `align fit`")
    t.add_argument("words", nargs="+", help="words to translate")
    t.add_argument("--reverse", action="store_true", help="translate target → source (English → Chinese)")
    t.add_argument("--method", choices=("csls", "cosine"), default="csls", help="retrieval score (default csls)")
    t.add_argument("-n", type=int, default=5, help="candidates per word (default 5)")
    t.add_argument("--json", action="store_true", help="one JSON object per word instead of text")
    t.set_defaults(func=cmd_align_translate)

    e = asub.add_parser("eval", help="precision@1/5/10 on a test dictionary, cosine and CSLS, both directions")
    e.add_argument("--aligned", type=Path, required=True, help="aligned folder written by `align fit`")
    e.add_argument("--dict", type=Path, required=True, help="test dictionary, `src TAB tgt` per line")
    e.set_defaults(func=cmd_align_eval)

    register_joint(asub)
    register_sentences(asub)


def cmd_align_fit(args: argparse.Namespace) -> int:
    from attnlab.align.dictionary import read_pairs
    from attnlab.align.procrustes import AlignConfig
    from attnlab.align.space import align_vectors
    from attnlab.word2vec.vectors import WordVectors

    missing = [f"--{name}" for name in FIT_OPTIONS if getattr(args, name, None) is None]
    if missing:
        raise AttnlabError(f"align fit needs {', '.join(missing)}")
    cfg = AlignConfig(**{k: getattr(args, k) for k in ("max_vocab", "refine", "refine_vocab") if hasattr(args, k)})
    if cfg.refine < 0 or cfg.max_vocab < 0 or cfg.refine_vocab < 1:
        raise AttnlabError(f"--refine and --max-vocab must be >= 0 and --refine-vocab >= 1, got "
                           f"{cfg.refine}, {cfg.max_vocab}, {cfg.refine_vocab}")
    pairs = read_pairs(args.dict)
    src, tgt = WordVectors.load(args.src), WordVectors.load(args.tgt)
    space = align_vectors(src, tgt, pairs, cfg, {"src": str(args.src), "tgt": str(args.tgt), "dict": str(args.dict)})
    space.save(args.out)
    return print_json(out=str(args.out), **space.info["vocab"], dictionary=space.info["dictionary"],
                      rounds=space.info["rounds"])


def cmd_align_translate(args: argparse.Namespace) -> int:
    from attnlab.align.space import AlignedSpace

    if args.n < 1:
        raise AttnlabError(f"-n must be at least 1, got {args.n}")
    space = AlignedSpace.load(args.aligned)
    lang = space.langs[1 if args.reverse else 0]
    for t in space.translate(args.words, reverse=args.reverse, method=args.method, n=args.n):
        if args.json:
            cands = None if t.candidates is None else [{"word": w, "score": round(s, 4)} for w, s in t.candidates]
            print(json.dumps({"word": t.word, "candidates": cands}, ensure_ascii=False))
        elif t.candidates is None:
            print(f"{t.word}\t(not in the {lang} vocabulary)")
        else:
            print(t.word + "\t" + "\t".join(f"{w} {s:.3f}" for w, s in t.candidates))
    return 0


def cmd_align_eval(args: argparse.Namespace) -> int:
    from attnlab.align.dictionary import read_pairs
    from attnlab.align.space import AlignedSpace

    space = AlignedSpace.load(args.aligned)
    scores = space.evaluate(read_pairs(args.dict))
    return print_json(aligned=str(args.aligned), dict=str(args.dict), **scores)
