"""`attnlab translate`: lines from stdin (or --input) to stdout, one line out per line in, on any engine.

Input is read and translated in chunks, so a long file streams; at a terminal each line is translated as
it is typed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attnlab.errors import AttnlabError
from attnlab.translate import ENGINE_HELP, ENGINES

CHUNK_LINES = 256  # translate reads and writes stdin in chunks of this many lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate lines from stdin (or --input) to stdout, one line per line")
    p.add_argument("--model", type=Path, required=True, help="run directory of a trained model")
    p.add_argument("--beam", type=int, default=None, help="beam size (1 = greedy; default from the model's config)")
    p.add_argument("--input", type=Path, default=None, help="read this file instead of stdin")
    p.add_argument("--engine", choices=ENGINES, default="attnlab", help=ENGINE_HELP)
    p.set_defaults(func=cmd_translate)


def read_chunks(stream, interactive: bool):
    """Yield lists of decoded lines; a non-UTF-8 line ends the input with an error naming it."""
    chunk: list[str] = []
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            if chunk:
                yield chunk
            raise AttnlabError(f"input line {number} is not valid UTF-8") from None
        chunk.append(line.rstrip("\r\n"))
        if interactive or len(chunk) >= CHUNK_LINES:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def cmd_translate(args: argparse.Namespace) -> int:
    from attnlab.translate import load_engine

    translator = load_engine(args.engine, args.model)
    translator.options(args.beam)  # a bad --beam fails before any input is read
    stream = open(args.input, "rb") if args.input else sys.stdin.buffer
    interactive = args.input is None and sys.stdin.isatty()
    prompt = f"{translator.cfg.src_lang}> "
    try:
        if interactive:
            print(f"attnlab {translator.cfg.direction}: type a sentence, Ctrl-D to quit", file=sys.stderr)
            print(prompt, end="", file=sys.stderr, flush=True)
        for chunk in read_chunks(stream, interactive):
            for line in translator.translate(chunk, beam=args.beam):
                sys.stdout.write(line.replace("\n", " ") + "\n")
            sys.stdout.flush()
            if interactive:
                print(prompt, end="", file=sys.stderr, flush=True)
    finally:
        if args.input:
            stream.close()
    return 0
