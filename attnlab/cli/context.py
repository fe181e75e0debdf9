"""`attnlab context`: one word's vector from its static embedding through every encoder layer, in two or
more sentences (`attnlab.experiments.context`): cosines per layer, nearest pieces, the attention rows that
moved it; one line of JSON, and a picture with --out.

    attnlab context --model runs/NAME "美女，加一下微信吧。" "美女，麻烦让一让。" --word 美女 [--out FILE.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnlab.cli.common import print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("context", help="a word's vector at every encoder layer, compared across sentences")
    p.add_argument("sentences", nargs="+", help="two or more source sentences that hold the word")
    p.add_argument("--model", type=Path, required=True, help="run directory of a trained model")
    p.add_argument("--word", required=True, help="the word to follow (its first occurrence in each sentence)")
    p.add_argument("--out", type=Path, default=None, help="also draw the picture: FILE.png or FILE.svg")
    p.set_defaults(func=cmd_context)


def cmd_context(args: argparse.Namespace) -> int:
    from attnlab.experiments.context import plot, study_word
    from attnlab.translate.pytorch import Translator

    study = study_word(Translator.load(args.model), args.word, args.sentences)
    if args.out is not None:
        plot(study, args.out)
    return print_json(**study.record(), **({"picture": str(args.out)} if args.out else {}))
