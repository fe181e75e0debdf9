"""`attnlab evaluate`: sacreBLEU and chrF of a model (any engine) on a split, as one line of JSON."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from attnlab.cli.common import add_model_flags, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="sacreBLEU and chrF of a model on a split, as JSON")
    add_model_flags(p)
    p.add_argument("--split", default="test", help="'test', 'dev', or a TSV file of pairs (default: test)")
    p.add_argument("--beam", type=int, default=None, help="beam size (1 = greedy; default from the model's config)")
    p.add_argument("--limit", type=int, default=0, help="score only the first N source sentences (0: all)")
    p.add_argument("--show", type=int, default=0, help="also print N sample translations to stderr")
    p.add_argument("--length-penalty", type=float, default=None,
                   help="GNMT length penalty alpha for beam search (default from the model's config)")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from attnlab.data.parallel import load_pairs
    from attnlab.metrics import score
    from attnlab.translate import load_engine

    translator = load_engine(args.engine, args.model, direction=args.direction)
    cfg = translator.cfg
    if args.length_penalty is not None:
        cfg = dataclasses.replace(cfg, decode=dataclasses.replace(cfg.decode, length_penalty=args.length_penalty))
        translator.cfg = cfg
    path = {"test": cfg.data.test, "dev": cfg.data.dev}.get(args.split, args.split)
    groups = load_pairs(path, cfg.direction).references()
    if args.limit > 0:
        groups = groups[: args.limit]
    beam = translator.options(args.beam).beam
    started = time.monotonic()
    hyps = translator.translate([src for src, _ in groups], beam=beam)
    seconds = time.monotonic() - started
    scores = score(hyps, [refs for _, refs in groups], cfg.tgt_lang)
    for (src, refs), hyp in list(zip(groups, hyps))[: args.show]:
        print(f"SRC {src}\nREF {refs[0]}\nHYP {hyp}\n", file=sys.stderr)
    return print_json(direction=cfg.direction, split=str(path), beam=beam, length_penalty=cfg.decode.length_penalty,
                      **dataclasses.asdict(scores), references=max(len(r) for _, r in groups),
                      seconds=round(seconds, 1))
