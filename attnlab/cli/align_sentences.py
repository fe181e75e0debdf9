"""`attnlab align sentences`: find each test sentence's translation by the meaning the encoder gives it.

    attnlab align sentences --model RUN [--split test|dev|FILE] [--pool mean|max] [--no-center] [--limit N] \\
        [--map sentences.png [--map-pairs 20]]
    attnlab align sentences --model RUN --via translation [--beam N] [--rerank 10] [--direction zh-en|en-zh]

Pools the model's encoder states of every distinct Chinese and English sentence of a split and prints
one line of JSON: P@1/5/10 of retrieving the translation, zh→en and en→zh, cosine and CSLS
(attnlab/align/sentences.py); with --map, draws short pairs in one map (attnlab/viz/bilingual.py).
With `--via translation` the model translates one side instead and the sentences are compared as text
in the other language (attnlab/align/bytranslation.py): the baseline the encoder's space is measured against.
`register_sentences(asub)` adds it under `attnlab align`; the heavy
imports wait until it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnlab.align.config import POOLS
from attnlab.cli.common import print_json
from attnlab.errors import AttnlabError


def register_sentences(asub: argparse._SubParsersAction) -> None:
    """Add `sentences` to the subcommands of `attnlab align`."""
    p = asub.add_parser("sentences", help="sentence retrieval by pooled encoder states: P@k zh->en and en->zh",
                        description="Encode every distinct Chinese and English sentence of a split with the model's "
                                    "encoder, pool its states into one vector each, and score how often a sentence's "
                                    "nearest neighbour in the other language is its translation (cosine and CSLS).")
    p.add_argument("--model", type=Path, required=True, help="a trained run directory (its vocabulary must be joint)")
    p.add_argument("--split", default="test",
                   help="'test', 'dev' (the run's own splits) or a TSV of pairs, Tatoeba or zh TAB en (default: test)")
    p.add_argument("--via", choices=("encoder", "translation"), default="encoder",
                   help="encoder: pooled encoder states of both languages (default); translation: translate the "
                        "model's source side and compare with the other side's sentences as character n-grams")
    p.add_argument("--beam", type=int, default=None, help="with --via translation: beam size (default: the run's)")
    p.add_argument("--rerank", type=int, default=0, metavar="K",
                   help="with --via translation: re-order each query's K best candidates by the model's "
                        "log-probability of the pair per token (method csls+model) and by the probability of "
                        "the source among those competing for the target (csls+posterior); default: 0, off")
    p.add_argument("--direction", choices=("zh-en", "en-zh"), default=None,
                   help="with --via translation, a model of both directions: the one to translate (default: its own)")
    p.add_argument("--pool", choices=POOLS, default="mean", help="pool the states by their mean or elementwise max "
                                                                 "(default: mean)")
    p.add_argument("--no-center", action="store_true", help="keep each language's mean vector (default: removed)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per forward pass (default: 64)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N pairs of the split (default: 0 = all)")
    p.add_argument("--map", type=Path, metavar="PNG", help="also draw short sentence pairs in one map (PNG or SVG)")
    p.add_argument("--map-pairs", type=int, default=20, help="with --map: how many pairs to draw (default: 20)")
    p.set_defaults(func=cmd_align_sentences)


def cmd_align_sentences(args: argparse.Namespace) -> int:
    from attnlab.align.sentences import encode_pairs, short_pairs
    from attnlab.checkpoint import load_run

    if args.limit < 0:
        raise AttnlabError(f"must be >= 0, got {args.limit}", field="limit")
    if args.map_pairs < 2:
        raise AttnlabError(f"must be at least 2, got {args.map_pairs}", field="map_pairs")
    if args.via == "translation":
        return _via_translation(args)
    run = load_run(args.model)
    split, pairs = _pairs(args, run.cfg)
    space = encode_pairs(run.model, run.tokenizer, pairs, pool=args.pool, batch_size=args.batch_size)
    scores = space.scores(center=not args.no_center)
    drawn = None
    if args.map is not None:
        from attnlab.viz.bilingual import plot_bilingual

        shown = short_pairs(pairs, args.map_pairs)
        picture = plot_bilingual(space.prepared(center=not args.no_center), shown, args.map, max_pairs=args.map_pairs,
                                 title="zh and en sentences by pooled encoder states; lines join translations")
        drawn = {"out": str(picture.out), "pairs": len(picture.lines)}
    return print_json(model=str(args.model), direction=run.cfg.direction, split=split, pool=args.pool,
                      center=not args.no_center, **scores, map=drawn)


def _pairs(args: argparse.Namespace, cfg) -> tuple[str, list[tuple[str, str]]]:
    """(the split's path, its (zh, en) pairs whatever the model's direction, --limit applied)."""
    from attnlab.data.parallel import load_pairs

    path = {"test": cfg.data.test, "dev": cfg.data.dev}.get(args.split, args.split)
    if not path:
        raise AttnlabError(f"{args.model} names no {args.split} split; give a TSV file", field="split")
    pairs = load_pairs(path, "zh-en").pairs
    return str(path), pairs[:args.limit] if args.limit else pairs


def _via_translation(args: argparse.Namespace) -> int:
    """Retrieval through the model's translations (attnlab/align/bytranslation.py)."""
    from attnlab.align.bytranslation import translation_scores
    from attnlab.translate import load_engine

    if args.map is not None:
        raise AttnlabError("draws pooled encoder vectors: not with --via translation", field="map")
    if args.beam is not None and args.beam < 1:
        raise AttnlabError(f"must be at least 1, got {args.beam}", field="beam")
    translator = load_engine("attnlab", args.model, direction=args.direction)
    split, pairs = _pairs(args, translator.cfg)
    scores = translation_scores(translator, pairs, beam=args.beam, rerank=args.rerank)
    return print_json(model=str(args.model), direction=translator.cfg.direction, split=split,
                      via="translation", beam=args.beam or translator.cfg.decode.beam, **scores)
