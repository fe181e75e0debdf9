"""`attnlab experiment NAME`: run one of the studies of `attnlab.experiments` end to end and write its
results table (results.json, results.md) and pictures into --out.

    attnlab experiment positions   --config FILE [--steps N | --minutes M] [--variants add,none] --out DIR
    attnlab experiment scaling     --config FILE [--steps N | --minutes M] [--variants sqrt,none] --out DIR
    attnlab experiment scaling     --model runs/NAME --out DIR    (the heads of one trained model, no training)
    attnlab experiment context     --model runs/NAME --out DIR
    attnlab experiment coordinates --model runs/NAME --out DIR
    attnlab experiment order       [--model runs/NAME] --out DIR

The training studies train each variant into --runs/VARIANT (resumed when one is there already, so a
stopped study continues; delete the folder to start afresh), under the same budget: --steps or --minutes
per variant, or the config's own.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from attnlab.cli.common import print_json
from attnlab.errors import AttnlabError

STUDIES = ("positions", "scaling", "context", "coordinates", "order")
TRAINING = ("positions", "scaling")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="run a study (positions, scaling, context, coordinates, order) end to end")
    p.add_argument("study", choices=STUDIES, help="the study to run")
    p.add_argument("--out", type=Path, default=None, help="folder for results.json, results.md and the pictures "
                   "(default: experiments/STUDY)")
    p.add_argument("--config", type=Path, help="positions, scaling: the TOML config every variant starts from")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="positions, scaling: override a config value for every variant (repeatable)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, help="positions, scaling: optimizer steps per variant")
    budget.add_argument("--minutes", type=float, default=None, help="positions, scaling: training minutes per variant")
    p.add_argument("--variants", default=None, help="positions, scaling: a comma-separated subset of the variants "
                   "(default: all)")
    p.add_argument("--runs", type=Path, default=None,
                   help="positions, scaling: folder of the variants' run directories (default: runs/experiment-STUDY)")
    p.add_argument("--test-limit", type=int, default=0, help="positions, scaling: test on the first N sentences (0: all)")
    p.add_argument("--model", type=Path, help="context, coordinates, order, and scaling without --config: run "
                   "directory of a trained model")
    p.set_defaults(func=cmd_experiment)


def command_line(args: argparse.Namespace) -> str:
    """The command as typed (its flags in a fixed order), for the results' record."""
    words = ["attnlab", "experiment", args.study]
    for flag in ("config", "model", "steps", "minutes", "variants", "runs", "test_limit", "out"):
        value = getattr(args, flag)
        if value not in (None, 0) or (flag == "out"):
            words += [f"--{flag.replace('_', '-')}", str(value)]
    for item in args.overrides:
        words += ["--set", item]
    return shlex.join(words)


def _variants(args: argparse.Namespace, known: tuple[str, ...]) -> tuple[str, ...]:
    if args.variants is None:
        return known
    chosen = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    unknown = [v for v in chosen if v not in known]
    if unknown or not chosen:
        raise AttnlabError(f"must name some of {', '.join(known)}, got {args.variants!r}", field="variants")
    return chosen


def cmd_experiment(args: argparse.Namespace) -> int:
    args.out = args.out or Path("experiments") / args.study
    command = command_line(args)
    if args.study == "scaling" and args.config is None and args.model is not None:
        from attnlab.experiments import scaling

        results = scaling.run_trained(args.model, args.out, command)
    elif args.study in TRAINING:
        results = _training_study(args, command)
    elif args.study == "order":
        from attnlab.experiments import order

        results = order.run(command, model_dir=args.model)
    else:
        if args.model is None:
            raise AttnlabError(f"experiment {args.study} reads a trained model: give --model runs/NAME")
        from attnlab.experiments import context, coordinates

        results = (context if args.study == "context" else coordinates).run(args.model, args.out, command)
    results.write(args.out)
    return print_json(study=args.study, out=str(args.out), rows=results.rows)


def _training_study(args: argparse.Namespace, command: str):
    from attnlab.config import load_config
    from attnlab.experiments import positions, scaling
    from attnlab.experiments.budget import Budget

    if args.config is None:
        raise AttnlabError(f"experiment {args.study} trains models: give --config FILE (e.g. configs/zh-en-demo.toml)")
    if args.steps is not None and args.steps < 1:
        raise AttnlabError(f"must be at least 1, got {args.steps}", field="steps")
    if args.minutes is not None and not args.minutes > 0:
        raise AttnlabError(f"must be above 0, got {args.minutes}", field="minutes")
    cfg = load_config(args.config, args.overrides)
    study = positions if args.study == "positions" else scaling
    budget = Budget(steps=args.steps or 0, minutes=args.minutes or 0.0)
    runs = args.runs or Path("runs") / f"experiment-{args.study}"
    return study.run(cfg, args.out, runs, budget, command, variants=_variants(args, study.VARIANTS),
                     test_limit=args.test_limit)
