"""Word translation in a jointly trained bilingual space against the Procrustes baseline.

Rows, on the same test headwords, both directions, P@1/P@5 by CSLS (and cosine in the JSON):
- Procrustes: Chinese and English skip-gram vectors trained apart on the monolingual corpora,
  mapped onto each other with orthogonal Procrustes on the CC-CEDICT training pairs (attnlab/align/space.py);
- joint: one skip-gram over the monolingual corpora, the Tatoeba training pairs merged and shuffled
  into pseudo-bilingual sentences and, optionally, the CC-CEDICT training pairs as anchors
  (attnlab/align/joint.py), searched as it is (identity map);
- joint + Procrustes: the joint vectors mapped once more with Procrustes on the same training pairs;
- with --model RUN, the translation model's cross-attention: word links over the Tatoeba training
  pairs ranked by Dice (attnlab/align/lexicon.py), the decoder layer (or the mean of all) chosen on
  dev; and that lexicon backed off to the joint space's CSLS neighbours (below its candidates, and
  for the words it never saw).

The CC-CEDICT test pairs enter no training or selection step. Settings are chosen on a dev
dictionary cut from the training pairs the same way the test set was cut from all of them: the
`--dev-size` training headwords at ranks [`--dev-start`, ...) by jieba's word frequencies, which
follow the test ranks; their pairs are removed from the anchors of every row. Precision counts
every query, uncovered ones as misses ("of all"), with coverage beside it.

    python benchmarks/align_joint.py --zh-corpus data/zh-mono/zh.txt --en-corpus ../shared/data/en-mix/en_mix.txt \\
        --parallel data/tatoeba-zh-en/train.tsv --train-dict data/cedict/train.tsv --test-dict data/cedict/test.tsv \\
        --out runs/align-joint --json benchmarks/results/align-joint.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from attnlab.align.dictionary import read_pairs
from attnlab.align import lexicon
from attnlab.align.joint import JointConfig, build_joint_space
from attnlab.align.procrustes import AlignConfig
from attnlab.align.space import AlignedSpace, align_vectors
from attnlab.data.cedict import jieba_counts, split_headwords
from attnlab.word2vec.config import Word2VecConfig
from attnlab.word2vec.train import train
from attnlab.word2vec.vectors import WordVectors

log = logging.getLogger("align_joint")


def dev_headwords(train_pairs: list[tuple[str, str]], start: int, size: int) -> set[str]:
    """Training headwords at frequency ranks [start, start + size) by jieba's counts (the test
    set's own ranking, so the dev words are about as frequent as the test words, a little rarer)."""
    if size == 0:
        return set()
    entries: dict[str, list[str]] = {}
    for zh, en in train_pairs:
        entries.setdefault(zh, []).append(en)
    return set(split_headwords(entries, jieba_counts(), start, size)[1])


def scores(space: AlignedSpace, dicts: dict[str, list[tuple[str, str]]]) -> dict:
    return {name: space.evaluate(pairs, ks=(1, 5, 10)) for name, pairs in dicts.items()}


def baseline_vectors(args: argparse.Namespace, w2v: Word2VecConfig) -> tuple[WordVectors, WordVectors, dict]:
    """Monolingual zh and en vectors: loaded from --zh-vectors/--en-vectors, else trained (and saved
    under --out/baseline-zh, baseline-en when --out is given)."""
    timing = {}
    out = {}
    for lang, given, corpus in (("zh", args.zh_vectors, args.zh_corpus), ("en", args.en_vectors, args.en_corpus)):
        if given is not None:
            out[lang] = WordVectors.load(given)
            continue
        t0 = time.perf_counter()
        out[lang], _ = train(corpus, w2v, show_progress=False)
        timing[f"train_{lang}_seconds"] = round(time.perf_counter() - t0, 1)
        if args.out is not None:
            out[lang].save(args.out / f"baseline-{lang}", formats=("safetensors",))
    return out["zh"], out["en"], timing


def attention_lexicon(args: argparse.Namespace, dicts: dict[str, list[tuple[str, str]]]):
    """The lexicon read from the model's cross-attention, its layer chosen on dev (zh→en P@1 over all
    dev words): (its row, with every layer's dev scores for the record; its counts; seconds)."""
    import torch

    from attnlab.checkpoint import load_run
    from attnlab.data.parallel import read_tsv

    t0 = time.perf_counter()
    torch.set_num_threads(args.threads)
    run = load_run(args.model)
    layers = tuple(range(len(run.model.decoder))) + (lexicon.ALL_LAYERS,)
    counts = lexicon.read_alignments(run.model, run.tokenizer, read_tsv(args.parallel), layers)
    by_layer = {layer: {name: lexicon.evaluate(c, pairs) for name, pairs in dicts.items()} for layer, c in counts.items()}
    pick = "dev" if "dev" in dicts else "test"
    best = max(layers, key=lambda layer: by_layer[layer][pick]["zh-en"]["of_all"]["dice"]["p@1"])
    name = "mean of decoder layers" if best == lexicon.ALL_LAYERS else f"decoder layer {best}"
    row = {"method": f"model cross-attention ({name})", "layer": best, **by_layer[best],
           "dev_by_layer": {str(layer): r.get("dev") for layer, r in by_layer.items()}}
    return row, counts[best], round(time.perf_counter() - t0, 1)


def table_line(name: str, dict_name: str, result: dict) -> str:
    z, e = result["zh-en"], result["en-zh"]
    method = next(m for m in ("csls", "dice", "dice+csls") if m in z)
    za, ea = z["of_all"][method], e["of_all"][method]
    return (f"| {name} | {dict_name} | {za['p@1']:.2f} | {za['p@5']:.2f} | {z['coverage']:.1f} | "
            f"{ea['p@1']:.2f} | {ea['p@5']:.2f} | {e['coverage']:.1f} |")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zh-corpus", type=Path, required=True, help="segmented Chinese text (data/zh-mono/zh.txt)")
    p.add_argument("--en-corpus", type=Path, required=True, help="English text (en_mix.txt)")
    p.add_argument("--parallel", type=Path, required=True, help="sentence pairs: Tatoeba train TSV")
    p.add_argument("--train-dict", type=Path, required=True, help="anchor dictionary, zh TAB en (training pairs)")
    p.add_argument("--test-dict", type=Path, required=True, help="test dictionary, zh TAB en")
    p.add_argument("--dev-start", type=int, default=1000, help="rank of the first dev headword among the training ones")
    p.add_argument("--dev-size", type=int, default=1500, help="dev headwords held out of the anchors (0: none)")
    p.add_argument("--pair-copies", type=int, default=JointConfig.pair_copies, help="shuffled copies of each sentence pair")
    p.add_argument("--anchor-copies", type=int, default=JointConfig.anchor_copies,
                   help="two-word sentences per dictionary pair (0: none)")
    p.add_argument("--switch", type=float, default=JointConfig.switch,
                   help="code-switching probability in the monolingual corpora (0: none)")
    p.add_argument("--no-dict", action="store_true", help="joint space without any dictionary anchors")
    p.add_argument("--no-center", action="store_true", help="search the joint space without removing each language's mean")
    p.add_argument("--window", type=int, default=5, help="Word2Vec window (every row)")
    p.add_argument("--dim", type=int, default=100, help="vector size (every row)")
    p.add_argument("--epochs", type=int, default=5, help="Word2Vec epochs (every row)")
    p.add_argument("--threads", type=int, default=1, help="Word2Vec threads (1 is deterministic)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--zh-vectors", type=Path, help="baseline Chinese vectors to load instead of training them")
    p.add_argument("--en-vectors", type=Path, help="baseline English vectors to load instead of training them")
    p.add_argument("--no-baseline", action="store_true", help="skip the Procrustes baseline row")
    p.add_argument("--no-joint", action="store_true", help="skip the joint rows")
    p.add_argument("--model", type=Path, help="a trained zh-en run: add the row read from its cross-attention")
    p.add_argument("--out", type=Path, help="write the joint aligned folder (and trained baseline vectors) here")
    p.add_argument("--json", type=Path, help="also write the results here")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    start = time.perf_counter()
    w2v = Word2VecConfig(arch="skipgram", dim=args.dim, window=args.window, epochs=args.epochs,
                         threads=args.threads, seed=args.seed)
    cfg = JointConfig(pair_copies=args.pair_copies, anchor_copies=args.anchor_copies, switch=args.switch,
                      center=not args.no_center, seed=args.seed)
    train_pairs = read_pairs(args.train_dict)
    dev = dev_headwords(train_pairs, args.dev_start, args.dev_size)
    anchors = [p for p in train_pairs if p[0] not in dev]
    dicts = {"test": read_pairs(args.test_dict)}
    if dev:
        dicts = {"dev": [p for p in train_pairs if p[0] in dev], **dicts}
    log.info("%d anchor pairs, %d dev headwords held out", len(anchors), len(dev))
    rows, timing = [], {}
    if not args.no_baseline:
        zh, en, timing = baseline_vectors(args, w2v)
        space = align_vectors(zh, en, anchors, AlignConfig())
        rows.append({"method": "Procrustes (monolingual vectors)", **scores(space, dicts)})
    joint = None
    if not args.no_joint:
        t0 = time.perf_counter()
        joint = build_joint_space(zh_mono=args.zh_corpus, en_mono=args.en_corpus, parallel=args.parallel,
                                  dictionary=None if args.no_dict else args.train_dict, exclude=dev,
                                  cfg=cfg, w2v=w2v, show_progress=False)
        timing["joint_seconds"] = round(time.perf_counter() - t0, 1)
        rows.append({"method": "joint", **scores(joint, dicts)})
        if args.out is not None:
            joint.save(args.out)
        mapped = align_vectors(joint.src, joint.tgt, anchors, AlignConfig())
        rows.append({"method": "joint + Procrustes", **scores(mapped, dicts)})
    if args.model is not None:
        row, counts, timing["model_lexicon_seconds"] = attention_lexicon(args, dicts)
        rows.append(row)
        if joint is not None:
            rows.append({"method": "model cross-attention, backed off to the joint space (CSLS)",
                         **{name: lexicon.evaluate(counts, pairs, space=joint) for name, pairs in dicts.items()}})
    timing["total_seconds"] = round(time.perf_counter() - start, 1)
    print("| method | dict | zh→en P@1 | P@5 | coverage | en→zh P@1 | P@5 | coverage |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        for name in dicts:
            print(table_line(row["method"], name, row[name]))
    print(json.dumps(timing))
    if args.json:
        record = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                  "joint": None if joint is None else {k: joint.info[k] for k in ("inputs", "training", "vocab")},
                  "timing": timing, "rows": rows}
        args.json.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
