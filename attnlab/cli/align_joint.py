"""`attnlab align joint` and `attnlab align lexicon`: word translation from parallel sentences.

    attnlab align joint --zh-corpus data/zh-mono/zh.txt --en-corpus en_mix.txt \\
        --parallel data/tatoeba-zh-en/train.tsv [--dict data/cedict/train.tsv] --out DIR [--pair-copies 16] ...
    attnlab align eval --aligned DIR --dict data/cedict/test.tsv          (as for a Procrustes folder)
    attnlab align lexicon --model RUN --parallel data/tatoeba-zh-en/train.tsv --dict data/cedict/test.tsv \\
        [--layer -1] [--backoff DIR]

`register_joint(asub)` adds both under `attnlab align`. Each handler reads its inputs, calls
attnlab.align.joint / attnlab.align.lexicon and prints one line of JSON (`cli.common.print_json`);
errors are AttnlabError, whose field (pair_copies, switch, ...) the CLI shows as the flag that gave
it. The flags take their defaults from JointConfig and Word2VecConfig, plain dataclasses that import
no numpy, so that `attnlab --help` stays light; the handlers import the heavy modules when they run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnlab.align.config import JointConfig
from attnlab.cli.common import print_json
from attnlab.errors import AttnlabError
from attnlab.word2vec.config import Word2VecConfig


def register_joint(asub: argparse._SubParsersAction) -> None:
    """Add `joint` and `lexicon` to the subcommands of `attnlab align`."""
    j = asub.add_parser("joint", help="train one Word2Vec space over both languages from parallel sentences",
                        description="Train skip-gram over the monolingual corpora plus each sentence pair merged "
                                    "and shuffled into one pseudo-bilingual sentence (Vulić & Moens 2016); "
                                    "write an aligned folder that `align eval` and `align translate` read.")
    add_joint_args(j)
    j.set_defaults(func=cmd_align_joint)
    x = asub.add_parser("lexicon", help="a word lexicon read from a translation model's cross-attention, scored "
                                        "on a test dictionary",
                        description="Link each English word of the sentence pairs to the Chinese word the model "
                                    "attends most, rank candidates by Dice and print P@1/5/10 both ways.")
    add_lexicon_args(x)
    x.set_defaults(func=cmd_align_lexicon)


def add_joint_args(p: argparse.ArgumentParser) -> None:
    """The flags of `attnlab align joint`."""
    d, W = JointConfig(), Word2VecConfig
    p.add_argument("--zh-corpus", type=Path, help="segmented Chinese text, one sentence per line (data/zh-mono/zh.txt)")
    p.add_argument("--en-corpus", type=Path, help="English text, text8 style or one sentence per line")
    p.add_argument("--parallel", type=Path, help="sentence pairs: a Tatoeba TSV or zh TAB en (training split only)")
    p.add_argument("--dict", type=Path, help="anchor dictionary, zh TAB en (training pairs only; never the test pairs)")
    p.add_argument("--out", type=Path, required=True, help="aligned folder to write (read by `align eval`/`translate`)")
    p.add_argument("--pair-copies", type=int, default=d.pair_copies, help=f"shuffled copies of each pair (default {d.pair_copies})")
    p.add_argument("--anchor-copies", type=int, default=d.anchor_copies,
                   help=f"two-word sentences per dictionary pair (default {d.anchor_copies})")
    p.add_argument("--switch", type=float, default=d.switch,
                   help=f"chance of code-switching a monolingual word with a dictionary translation (default {d.switch})")
    p.add_argument("--max-vocab", type=int, default=d.max_vocab, help=f"words per language searched, 0 = all (default {d.max_vocab})")
    p.add_argument("--no-center", action="store_true", help="keep each language's mean vector")
    p.add_argument("--dim", type=int, default=W.dim, help=f"vector size (default {W.dim})")
    p.add_argument("--window", type=int, default=W.window, help=f"skip-gram window (default {W.window})")
    p.add_argument("--epochs", type=int, default=W.epochs, help=f"passes over the joint corpus (default {W.epochs})")
    p.add_argument("--min-count", type=int, default=W.min_count,
                   help=f"words seen fewer times are dropped (default {W.min_count})")
    p.add_argument("--threads", type=int, default=W.threads,
                   help=f"Word2Vec threads (default {W.threads}: deterministic)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seeds the shuffles and Word2Vec (default {d.seed})")


def cmd_align_joint(args: argparse.Namespace) -> int:
    """Train the joint space and write it as an aligned folder; print its vocabulary and training record."""
    from attnlab.align.joint import build_joint_space

    cfg = JointConfig(pair_copies=args.pair_copies, anchor_copies=args.anchor_copies, switch=args.switch,
                      max_vocab=args.max_vocab, center=not args.no_center, seed=args.seed)
    w2v = Word2VecConfig(arch="skipgram", dim=args.dim, window=args.window, epochs=args.epochs,
                         min_count=args.min_count, threads=args.threads, seed=args.seed)
    space = build_joint_space(zh_mono=args.zh_corpus, en_mono=args.en_corpus, parallel=args.parallel,
                              dictionary=args.dict, cfg=cfg, w2v=w2v)
    space.save(args.out)
    return print_json(out=str(args.out), **{k: space.info[k] for k in ("vocab", "inputs", "training")})


def add_lexicon_args(p: argparse.ArgumentParser) -> None:
    """The flags of `attnlab align lexicon`."""
    p.add_argument("--model", type=Path, required=True, help="a trained zh-en run directory")
    p.add_argument("--parallel", type=Path, required=True, help="sentence pairs to read alignments from (training split)")
    p.add_argument("--dict", type=Path, required=True, help="test dictionary, zh TAB en")
    p.add_argument("--layer", type=int, default=-1, help="decoder layer whose heads are averaged; -1 = all layers (default)")
    p.add_argument("--batch-size", type=int, default=64, help="pairs per forward pass (default 64)")
    p.add_argument("--backoff", type=Path, metavar="ALIGNED",
                   help="an aligned folder (e.g. from `align joint`) whose CSLS neighbours fill in below the lexicon's "
                        "candidates and for the words it never saw")


def cmd_align_lexicon(args: argparse.Namespace) -> int:
    """Read the lexicon from the model's cross-attention and print its P@1/5/10, both directions."""
    from attnlab.align import lexicon
    from attnlab.align.dictionary import read_pairs
    from attnlab.align.space import AlignedSpace
    from attnlab.checkpoint import load_run
    from attnlab.data.parallel import read_tsv

    if args.batch_size < 1:
        raise AttnlabError(f"--batch-size must be at least 1, got {args.batch_size}")
    space = None if args.backoff is None else AlignedSpace.load(args.backoff)  # before the long read: fail early
    run = load_run(args.model)
    if run.cfg.src_lang != "zh" and not run.cfg.bidirectional:
        raise AttnlabError(f"{args.model} translates {run.cfg.src_lang}->{run.cfg.tgt_lang}; the lexicon reads a zh->en model")
    try:
        counts = lexicon.read_alignments(run.model, run.tokenizer, read_tsv(args.parallel), (args.layer,),
                                         args.batch_size)[args.layer]
    except ValueError as e:
        raise AttnlabError(f"--layer: {e}") from None
    return print_json(model=str(args.model), layer=args.layer, backoff=None if space is None else str(args.backoff),
                      **lexicon.evaluate(counts, read_pairs(args.dict), space=space))
