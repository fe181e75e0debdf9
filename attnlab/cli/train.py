"""`attnlab train`: train a translation model into a run directory (or resume one), then write its report."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from attnlab.cli.common import print_json
from attnlab.errors import AttnlabError

log = logging.getLogger("attnlab")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a translation model into a run directory",
                       description="Train a translation model. Several processes: torchrun --nproc_per_node=N -m attnlab train ...")
    p.add_argument("--config", type=Path, help="TOML config (e.g. configs/zh-en-small.toml); not needed with --resume")
    p.add_argument("--out", type=Path, required=True, help="run directory to create (or to resume)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.max_steps=100 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the newest intact checkpoint in --out (with --config: start the run "
                        "when --out holds none yet, so one command line survives any kill)")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock training budget (sets train.max_minutes)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (sets train.threads)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None, help="sets train.device (default auto)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default=None,
                   help="sets train.precision: bf16 autocast is meant for GPUs (default fp32)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward (sets train.compile)")
    p.add_argument("--init-embeddings", action="append", default=None, metavar="DIR",
                   help="start the subword embeddings from Word2Vec vectors (`attnlab w2v train` output); "
                        "repeatable, e.g. Chinese and English vectors for a joint vocabulary (sets train.init_embeddings)")
    p.set_defaults(func=cmd_train)


def overrides(args: argparse.Namespace) -> list[str]:
    """--set values, then the train.* values of the dedicated flags."""
    out = list(args.overrides)
    for flag in ("max_minutes", "threads", "device", "precision"):
        if getattr(args, flag) is not None:
            out.append(f"train.{flag}={getattr(args, flag)}")
    if args.compile:
        out.append("train.compile=true")
    if args.init_embeddings:
        out.append("train.init_embeddings=" + ",".join(str(p) for p in args.init_embeddings))
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from attnlab import checkpoint
    from attnlab.config import load_config
    from attnlab.train import train

    resume = args.resume
    if resume and not (args.out / checkpoint.CONFIG_FILE).is_file():
        if args.config is None:
            raise AttnlabError(f"--resume: {args.out} has no {checkpoint.CONFIG_FILE}; nothing to resume")
        # killed before its first save: the same command line starts the run afresh from --config
        log.warning("--resume: %s has no %s yet; starting a new run from %s", args.out, checkpoint.CONFIG_FILE,
                    args.config)
        resume = False
    if resume:
        cfg = load_config(args.out / checkpoint.CONFIG_FILE, overrides(args))
        trained = load_config(args.out / checkpoint.CONFIG_FILE).direction
        if cfg.direction != trained:  # its tokenizer, weights and data order belong to the other direction
            raise AttnlabError(f"--resume: {args.out / checkpoint.CONFIG_FILE} is a {trained} run; "
                               f"it cannot continue as {cfg.direction}")
    else:
        if args.config is None:
            raise AttnlabError("train needs --config (or --resume with an existing --out)")
        if any((args.out / checkpoint.CHECKPOINT_DIR).glob("step-*")):
            raise AttnlabError(f"{args.out} already holds a run; use --resume to continue it or choose another --out")
        cfg = load_config(args.config, overrides(args))
    result = train(cfg, args.out, resume=resume)
    if "rank" not in result:  # rank 0 (the only one that evaluates) returns no rank
        _write_report(args.out)
        log.info("%s", budget_summary(result))
    return print_json(**result)


def budget_summary(result: dict) -> str:
    """What the training bought: steps, epochs and dev scores, with the machine's measured speed."""
    bleu = result.get("dev_bleu")
    line = (f"trained {result['step']} steps ({result['epoch']} epochs); dev loss {result['dev_loss']:.3f}"
            + (f", dev BLEU {bleu:.2f} (greedy, dev subset)" if bleu is not None else ""))
    if result.get("machine_gflops"):
        line += f"; this machine: {result['machine_gflops']:.0f} GFLOP/s fp32 matmul"
    return line


def _write_report(run_dir: Path) -> None:
    """runs/NAME/report.html after training; a problem with it is a warning, never a failed run."""
    try:
        from attnlab.viz.report import write_report

        write_report(run_dir)
    except Exception as e:  # noqa: BLE001 - the trained model is what matters
        log.warning("could not write %s/report.html: %s", run_dir, e)
