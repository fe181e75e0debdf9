"""The `attnlab` command line: argparse subcommands, each only wiring library pieces together.

One module per command (data, train, translate, score, evaluate, average, serve, export, align, viz, w2v,
experiment, context), each with `register(subparsers)` and its `cmd_*` functions; `common.py` holds what they
share (the one line of JSON they print, the --model/--engine/--direction flags). The library never imports
this package. Errors a user can cause (bad input, missing or corrupt files, unknown config keys) become one
line on stderr and exit status 2 (`error_line`); an interrupt exits with 130.
"""

from __future__ import annotations

import argparse
import logging
import sys

from attnlab.cli import (align, average, context, data, evaluate, experiment, export, score, serve, train, translate, viz,
                         w2v)
from attnlab.errors import AttnlabError

COMMANDS = (data, train, translate, score, evaluate, average, serve, export, align, viz, w2v, experiment, context)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attnlab", description="The Transformer, built from its parts: train and use a zh<->en translator.")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return p


def error_line(e: AttnlabError, args: argparse.Namespace) -> str:
    """The line an error prints. An error about a field whose value the command line gave names the flag
    (decode.beam -> --beam, max_batch -> --max-batch: `--` and the field's last part, dashed, as argparse
    spells a flag's dest); one about a value no flag gave reads as raised."""
    dest = e.field.rsplit(".", 1)[-1] if e.field else None
    if dest is None or getattr(args, dest, None) is None:
        return f"attnlab: error: {e}"
    return f"attnlab: error: --{dest.replace('_', '-')} {e.message}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s"
                        if args.quiet else "%(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except AttnlabError as e:
        print(error_line(e, args), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("attnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:  # a missing input, an unwritable output folder, a full disk: name the file
        where = f": {e.filename}" if e.filename else ""
        print(f"attnlab: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
