"""`attnlab score`: the model's log-probability of given translations (a forced decode), one line out per
`source TAB target` line in, for filtering parallel data and comparing models.

Each output line is log P(target | source), <eos> included (`nan` where the source has no tokens); with
--per-token, a line of JSON with the target pieces and the log-probability of each.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from attnlab.cli.common import add_model_flags
from attnlab.cli.translate import read_chunks
from attnlab.errors import AttnlabError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="print the model's log-probability of each `source TAB target` line")
    add_model_flags(p)
    p.add_argument("--input", type=Path, default=None, help="read this file instead of stdin")
    p.add_argument("--per-token", action="store_true",
                   help="print JSON with each target piece's log-probability instead of their sum")
    p.set_defaults(func=cmd_score)


def split_pairs(lines: list[str], first_number: int) -> list[tuple[str, str]]:
    """`source TAB target` lines -> pairs; a line without a tab is an error naming it."""
    pairs = []
    for number, line in enumerate(lines, start=first_number):
        if "\t" not in line:
            raise AttnlabError(f"input line {number} has no tab: score reads `source TAB target` lines")
        source, target = line.split("\t", 1)
        pairs.append((source, target))
    return pairs


def cmd_score(args: argparse.Namespace) -> int:
    from attnlab.translate import load_engine

    translator = load_engine(args.engine, args.model, direction=args.direction)
    stream = open(args.input, "rb") if args.input else sys.stdin.buffer
    seen = 0
    try:
        for chunk in read_chunks(stream, interactive=False):
            for scored in translator.score(split_pairs(chunk, seen + 1)):
                sys.stdout.write(score_line(scored, args.per_token) + "\n")
            seen += len(chunk)
            sys.stdout.flush()
    finally:
        if args.input:
            stream.close()
    return 0


def score_line(scored, per_token: bool) -> str:
    """One printed line for a `Scored` (None: the source had no tokens)."""
    if not per_token:
        return f"{scored.log_prob:.4f}" if scored is not None else str(math.nan)
    if scored is None:
        return json.dumps({"log_prob": None, "tokens": [], "token_log_probs": []})
    return json.dumps({"log_prob": round(scored.log_prob, 4), "tokens": scored.tokens,
                       "token_log_probs": [round(x, 4) for x in scored.token_log_probs]}, ensure_ascii=False)
