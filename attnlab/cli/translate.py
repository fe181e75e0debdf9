"""`attnlab translate`: lines from stdin (or --input) to stdout, one line out per line in, on any engine.

Input is read and translated in chunks, so a long file streams; at a terminal each line is translated as
it is typed. With --n-best K each input gives one line of JSON, its K best hypotheses with their scores
(and alignments); otherwise --scores puts the score before the translation and --alignment the `i-j` word
links after it, separated by tabs. The decoding flags (--sample, --min-decoding-length, ...) override the
model's `[decode]` table (attnlab.config.DecodeConfig).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from attnlab.cli.common import add_model_flags
from attnlab.errors import AttnlabError

CHUNK_LINES = 256  # translate reads and writes stdin in chunks of this many lines


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate lines from stdin (or --input) to stdout, one line per line")
    add_model_flags(p)
    p.add_argument("--beam", type=int, default=None, help="beam size (1 = greedy; default from the model's config)")
    p.add_argument("--input", type=Path, default=None, help="read this file instead of stdin")
    add_output_flags(p)
    add_decode_flags(p)
    p.set_defaults(func=cmd_translate)


def add_output_flags(p: argparse.ArgumentParser) -> None:
    """What is printed for each input, and the target start the outputs continue."""
    p.add_argument("--n-best", type=int, default=None,
                   help="print the K best hypotheses of each input (at most the beam) as one JSON line")
    p.add_argument("--scores", action="store_true", help="print each output's score (log P / length penalty) first")
    p.add_argument("--prefix", default=None, help="every output starts with this target text and continues it")
    p.add_argument("--alignment", action="store_true",
                   help="print each output's source-target word links (fast_align's i-j) from the cross-attention")
    p.add_argument("--alignment-layer", type=int, default=None,
                   help="read alignments from this decoder layer's heads (default: the mean of every layer)")
    p.add_argument("--replace-unknowns", action="store_true",
                   help="replace each <unk> in an output with the source word it attends to most")


DECODE_FLAGS = {  # DecodeConfig fields with a flag: (type, help); None leaves the model's [decode] value
    "length_penalty": (float, "GNMT length penalty alpha of beam search (default from the model's config)"),
    "sample": (str, "sample each token instead of searching: topk or topp"),
    "top_k": (int, "with --sample topk: draw from the k most likely tokens"),
    "top_p": (float, "with --sample topp: draw from the most likely tokens holding this much probability"),
    "temperature": (float, "with --sample: divide the logits by this (default 1)"),
    "seed": (int, "with --sample: seed of the draws (default 0)"),
    "max_decoding_length": (int, "longest output in subwords (default: from the source length)"),
    "min_decoding_length": (int, "shortest output in subwords (default 0)"),
    "no_repeat_ngram_size": (int, "no n-gram of this size twice in an output (default 0: off)"),
    "repetition_penalty": (float, "> 1 makes tokens already in the output less likely (default 1: off)"),
}


def add_decode_flags(p: argparse.ArgumentParser) -> None:
    for name, (kind, text) in DECODE_FLAGS.items():
        extra = {"choices": ("topk", "topp")} if name == "sample" else {}
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text, **extra)


def decode_overrides(args: argparse.Namespace) -> dict:
    """The decoding options the command line gave (n_best and DECODE_FLAGS' fields), by field name."""
    return {name: getattr(args, name) for name in ("n_best", *DECODE_FLAGS)}


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

    translator = load_engine(args.engine, args.model, direction=args.direction)
    opts = translator.options(args.beam, **decode_overrides(args))  # bad flags fail before any input is read
    detailed = args.n_best is not None or args.scores or args.alignment or args.replace_unknowns or args.prefix \
        or any(getattr(args, name) is not None for name in DECODE_FLAGS)
    stream = open(args.input, "rb") if args.input else sys.stdin.buffer
    interactive = args.input is None and sys.stdin.isatty()
    prompt = f"{translator.cfg.src_lang}> "
    try:
        if interactive:
            print(f"attnlab {translator.cfg.direction}: type a sentence, Ctrl-D to quit", file=sys.stderr)
            print(prompt, end="", file=sys.stderr, flush=True)
        for chunk in read_chunks(stream, interactive):
            if detailed:
                lines = output_lines(translator, chunk, opts, args)
            else:
                lines = translator.translate(chunk, beam=args.beam)
            for line in lines:
                sys.stdout.write(line.replace("\n", " ") + "\n")
            sys.stdout.flush()
            if interactive:
                print(prompt, end="", file=sys.stderr, flush=True)
    finally:
        if args.input:
            stream.close()
    return 0


def output_lines(translator, chunk: list[str], opts, args: argparse.Namespace) -> list[str]:
    """One printed line per input: JSON with --n-best, else [score TAB] translation [TAB links]."""
    from attnlab.translate.alignment import pharaoh

    prefixes = None if args.prefix is None else [args.prefix] * len(chunk)
    results = translator.translate_hypotheses(chunk, opts, prefixes=prefixes, alignment=args.alignment,
                                              alignment_layer=args.alignment_layer,
                                              replace_unknowns=args.replace_unknowns)
    if args.n_best is not None:
        return [json.dumps({"hypotheses": [hypothesis_json(h, args.alignment) for h in hyps]}, ensure_ascii=False)
                for hyps in results]
    lines = []
    for hyps in results:
        best = hyps[0] if hyps else None
        columns = [best.text if best else ""]
        if args.scores:
            columns.insert(0, f"{best.score:.4f}" if best else "")
        if args.alignment:
            columns.append(pharaoh(best.alignment) if best else "")
        lines.append("\t".join(columns))
    return lines


def hypothesis_json(h, alignment: bool) -> dict:
    """A Translation as the JSON lines print it."""
    from attnlab.translate.alignment import pharaoh

    out = {"translation": h.text, "score": round(h.score, 4), "log_prob": round(h.log_prob, 4)}
    if alignment:
        out["alignment"] = pharaoh(h.alignment)
    return out
