"""`attnlab export`: write a trained run in another engine's format.

    attnlab export ctranslate2 --model runs/NAME --out DIR [--quantization int8] [--force]
    attnlab export onnx        --model runs/NAME --out DIR [--opset 17] [--force]

The exporters (`attnlab.export`) and their engines (ctranslate2, onnx) are imported only when the command
runs, so `attnlab --help` works without them. On success one line of JSON goes to stdout: the output folder
and the files in it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnlab.cli.common import print_json
from attnlab.export import QUANTIZATIONS


def register(sub: argparse._SubParsersAction) -> None:
    """Add `export` (with its `ctranslate2` and `onnx` subcommands) to the `attnlab` parser."""
    p = sub.add_parser("export", help="export a trained model for CTranslate2 or ONNX Runtime")
    esub = p.add_subparsers(dest="export_format", required=True, metavar="FORMAT")

    c = esub.add_parser("ctranslate2", help="a CTranslate2 model folder (use it with translate --engine ctranslate2)")
    o = esub.add_parser("onnx", help="encoder.onnx and decoder_step.onnx, for ONNX Runtime")
    for q in (c, o):  # what both formats read and write
        q.add_argument("--model", type=Path, required=True, help="run directory of a trained model")
        q.add_argument("--out", type=Path, required=True, help="folder to write (must not exist, unless --force)")
        q.add_argument("--force", action="store_true", help="replace an earlier export in --out")
    c.add_argument("--quantization", choices=QUANTIZATIONS, default=None,
                   help="store weights quantized, e.g. int8 (fast on CPUs with AVX-512 VNNI; default: float32)")
    c.set_defaults(func=cmd_export_ctranslate2)
    o.add_argument("--opset", type=int, default=17, help="ONNX opset version (default: 17)")
    o.set_defaults(func=cmd_export_onnx)


def _report(out: Path) -> int:
    return print_json(out=str(out), files=sorted(p.name for p in out.iterdir()))


def cmd_export_ctranslate2(args: argparse.Namespace) -> int:
    from attnlab.export.ctranslate2 import export_ctranslate2

    return _report(export_ctranslate2(args.model, args.out, args.quantization, force=args.force))


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from attnlab.export.onnx import export_onnx

    return _report(export_onnx(args.model, args.out, force=args.force, opset=args.opset))
