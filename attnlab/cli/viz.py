"""`attnlab viz`: pictures of a model's insides, each written as PNG or SVG (by the --out suffix);
`viz attention` also writes an interactive page when FILE ends in .html (head selector, hover highlighting).

    attnlab viz attention  --model runs/NAME "我们试试看！" [--layer L] [--head H] [--kind cross|encoder|decoder] --out FILE
    attnlab viz positions  [--dim 128] [--length 100] --out FILE
    attnlab viz scaling    [--dim 64] --out FILE
    attnlab viz embeddings --vectors DIR [--words FILE | --top 300] [--method pca|tsne] --out FILE
    attnlab viz training   --run runs/NAME --out FILE
    attnlab viz report     --run runs/NAME [--out FILE]

The pictures are drawn by `attnlab.viz`; matplotlib and scikit-learn are imported only when a command
runs. On success one line of JSON goes to stdout (the file written).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnlab.cli.common import print_json
from attnlab.config import DIRECTIONS
from attnlab.errors import AttnlabError
from attnlab.translate import DIRECTION_HELP


def _out(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, required=True, help="image to write: FILE.png or FILE.svg")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `viz` (with its subcommands) to the `attnlab` parser."""
    p = sub.add_parser("viz", help="draw attention maps, positional encoding, embeddings, training curves")
    vsub = p.add_subparsers(dest="viz_command", required=True, metavar="PICTURE")

    a = vsub.add_parser("attention", help="attention heatmaps of one sentence, with the subword tokens on both axes")
    a.add_argument("sentence", help="the source sentence to translate and show")
    a.add_argument("--model", type=Path, required=True, help="run directory of a trained model")
    a.add_argument("--kind", choices=("cross", "encoder", "decoder"), default="cross",
                   help="cross: target over source; encoder / decoder: self-attention (default: cross)")
    a.add_argument("--layer", type=int, default=-1, help="layer, counted from 0; -1 is the last (default: -1)")
    a.add_argument("--head", type=int, default=None,
                   help="draw only this head (from 0); without it: every head of the layer and their mean")
    a.add_argument("--beam", type=int, default=None, help="beam size of the translation (default from the model's config)")
    a.add_argument("--direction", choices=DIRECTIONS, default=None, help=DIRECTION_HELP)
    a.add_argument("--out", type=Path, required=True,
                   help="file to write: FILE.png or FILE.svg (a picture), or FILE.html (an interactive page of the layer: "
                        "a head selector starting at --head or the mean, hover a row to see its weights)")
    a.set_defaults(func=cmd_attention)

    pos = vsub.add_parser("positions", help="the sinusoidal positional encoding, some of its waves, position similarity")
    pos.add_argument("--dim", type=int, default=128, help="encoding width (even; default: 128)")
    pos.add_argument("--length", type=int, default=100, help="number of positions (default: 100)")
    _out(pos)
    pos.set_defaults(func=cmd_positions)

    s = vsub.add_parser("scaling", help="why scores are divided by √d: q·k variance and softmax entropy, with and without")
    s.add_argument("--dim", type=int, default=64, help="vector width of the histogram panel (default: 64)")
    s.add_argument("--samples", type=int, default=20000, help="random (q, k) pairs per width (default: 20000)")
    s.add_argument("--keys", type=int, default=32, help="keys per softmax row for the entropy curve (default: 32)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _out(s)
    s.set_defaults(func=cmd_scaling)

    e = vsub.add_parser("embeddings", help="a labelled 2-D map (PCA or t-SNE) of word vectors or a model's embeddings")
    e.add_argument("--vectors", type=Path, default=None,
                   help="a word-vectors folder (or .bin/.txt file), or a run directory (its embedding matrix)")
    e.add_argument("--aligned", type=Path, default=None,
                   help="instead of --vectors: an aligned folder (`attnlab align`): Chinese and English words in one "
                        "map, dictionary pairs joined by lines")
    e.add_argument("--dict", type=Path, default=Path("data/cedict/test.tsv"),
                   help="with --aligned: the `zh TAB en` pairs to draw (default: data/cedict/test.tsv)")
    e.add_argument("--pairs", type=int, default=30, help="with --aligned: how many pairs to draw (default: 30)")
    which = e.add_mutually_exclusive_group()
    which.add_argument("--words", type=Path, default=None, help="file with the words to draw, one per line")
    which.add_argument("--top", type=int, default=300, help="draw the N most frequent words (default: 300)")
    e.add_argument("--method", choices=("pca", "tsne"), default="pca", help="2-D projection (default: pca)")
    e.add_argument("--seed", type=int, default=0, help="random seed for t-SNE (default: 0)")
    _out(e)
    e.set_defaults(func=cmd_embeddings)

    t = vsub.add_parser("training", help="loss, perplexity, dev BLEU and learning rate against steps")
    t.add_argument("--run", type=Path, required=True, help="run directory (or its metrics.jsonl)")
    _out(t)
    t.set_defaults(func=cmd_training)

    r = vsub.add_parser("report", help="write the run's self-contained report.html (curves, scores, samples, attention)")
    r.add_argument("--run", type=Path, required=True, help="run directory of a trained model")
    r.add_argument("--out", type=Path, default=None, help="HTML file to write (default: RUN/report.html)")
    r.add_argument("--count", type=int, default=3, help="number of test sentences shown (default: 3)")
    r.add_argument("--sentence", action="append", default=None, help="show this sentence instead (repeatable)")
    r.set_defaults(func=cmd_report)


def cmd_attention(args: argparse.Namespace) -> int:
    from attnlab.translate.pytorch import Translator
    from attnlab.viz.attention import plot_attention
    from attnlab.viz.attention_html import HTML_SUFFIX, write_attention_html
    from attnlab.viz.figure import FORMATS

    suffix = args.out.suffix.lower()
    if suffix not in (*FORMATS, HTML_SUFFIX):  # a bad suffix fails before the model loads
        raise AttnlabError(f"{args.out}: the output must end in .png or .svg (a picture) or .html (an interactive page)")
    maps = Translator.load(args.model, args.direction).attention(args.sentence, beam=args.beam)
    if suffix == HTML_SUFFIX:
        picture = write_attention_html(maps, args.out, args.kind, args.layer, args.head)
    else:
        picture = plot_attention(maps, args.out, args.kind, args.layer, args.head)
    return print_json(out=str(args.out), translation=maps.translation, layer=picture.layer, heads=picture.heads)


def cmd_positions(args: argparse.Namespace) -> int:
    from attnlab.viz.positions import plot_positions

    plot_positions(args.out, args.dim, args.length)
    return print_json(out=str(args.out))


def cmd_scaling(args: argparse.Namespace) -> int:
    from attnlab.viz.scaling import plot_scaling

    picture = plot_scaling(args.out, args.dim, args.samples, args.keys, args.seed)
    i = picture.dims.index(args.dim)
    return print_json(out=str(args.out), variance=round(float(picture.var_unscaled[i]), 3),
                      variance_scaled=round(float(picture.var_scaled[i]), 3))


def cmd_embeddings(args: argparse.Namespace) -> int:
    from attnlab.viz.embeddings import choose, is_run_dir, load_any, plot_embeddings, read_words, script_groups
    from attnlab.viz.figure import image_format

    image_format(args.out)
    if (args.aligned is None) == (args.vectors is None):
        raise AttnlabError("viz embeddings needs exactly one of --vectors and --aligned")
    if args.aligned is not None:
        return _bilingual(args)
    vectors = load_any(args.vectors)
    words, matrix = choose(vectors, read_words(args.words) if args.words else None, args.top)
    groups = script_groups(words) if is_run_dir(args.vectors) and len(set(script_groups(words))) > 1 else None
    picture = plot_embeddings(words, matrix, args.out, args.method, groups, title=f"{args.vectors}: {len(words)} words, {args.method.upper()}", seed=args.seed)
    return print_json(out=str(args.out), words=len(picture.words))


def _bilingual(args: argparse.Namespace) -> int:
    from attnlab.align.dictionary import read_pairs
    from attnlab.align.space import AlignedSpace
    from attnlab.viz.bilingual import plot_bilingual

    space = AlignedSpace.load(args.aligned)
    first = {}  # one pair per Chinese headword, the first listed
    for zh, en in read_pairs(args.dict):
        if zh in space.src.index and en in space.tgt.index:
            first.setdefault(zh, en)
    pairs = sorted(first.items(), key=lambda p: space.src.index[p[0]])  # most frequent Chinese words first
    picture = plot_bilingual(space, pairs, args.out, max_pairs=args.pairs)
    return print_json(out=str(args.out), words=len(picture.src_words) + len(picture.tgt_words))


def cmd_training(args: argparse.Namespace) -> int:
    from attnlab.viz.training import plot_training

    plot_training(args.run, args.out)
    return print_json(out=str(args.out))


def cmd_report(args: argparse.Namespace) -> int:
    from attnlab.viz.report import write_report

    report = write_report(args.run, args.sentence, args.count, args.out)
    return print_json(out=str(report.path), samples=len(report.samples))
