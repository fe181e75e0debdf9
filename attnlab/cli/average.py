"""`attnlab average`: the weights of a run's last N checkpoints averaged into a model directory
(Vaswani et al. 2017, section 6.1)."""

from __future__ import annotations

import argparse
from pathlib import Path

from attnlab.cli.common import print_json
from attnlab.errors import AttnlabError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("average", help="average the weights of a run's last N checkpoints into a model directory",
                       description="Average the last N checkpoints of a run (Vaswani et al. 2017, section 6.1) "
                                   "into a self-contained model directory that translate/evaluate/serve load.")
    p.add_argument("--run", type=Path, required=True, help="run directory whose checkpoints/ to average")
    p.add_argument("--last", type=int, default=5, help="how many of the newest intact checkpoints (default 5; "
                   "train with train.average_last=N to keep that many)")
    p.add_argument("--out", type=Path, required=True,
                   help="model directory to write (config, tokenizer, averaged weights); may be --run itself, "
                        "whose model.safetensors is then replaced")
    p.set_defaults(func=cmd_average)


def cmd_average(args: argparse.Namespace) -> int:
    import shutil

    from attnlab import checkpoint
    from attnlab.model import Seq2SeqTransformer

    cfg = checkpoint.load_run_config(args.run)
    ckpts = checkpoint.intact_checkpoints(args.run)
    if args.last < 1:
        raise AttnlabError(f"--last must be at least 1, got {args.last}")
    if len(ckpts) < args.last:
        raise AttnlabError(f"{args.run} has only {len(ckpts)} intact checkpoints, fewer than --last {args.last}")
    ckpts = ckpts[-args.last:]
    weights = checkpoint.average_weights(ckpts)
    if args.out.resolve() != args.run.resolve():
        if (args.out / checkpoint.WEIGHTS_FILE).exists():
            raise AttnlabError(f"{args.out} already holds a model; choose another --out")
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copytree(args.run / checkpoint.TOKENIZER_DIR, args.out / checkpoint.TOKENIZER_DIR, dirs_exist_ok=True)
        checkpoint.save_config(args.out, cfg)
    model = Seq2SeqTransformer(cfg.model)
    checkpoint.apply_weights(model, weights, ckpts[-1])
    steps = [checkpoint.checkpoint_step(c) for c in ckpts]
    checkpoint.save_best(args.out, model, {"averaged_steps": steps, "direction": cfg.direction})
    return print_json(out=str(args.out), averaged_steps=steps)
