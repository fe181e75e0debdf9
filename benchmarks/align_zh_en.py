"""Word translation through aligned Chinese and English Word2Vec spaces: P@k against the corpus size.

For each fraction of the Chinese corpus (every k-th line, so each source keeps its share), trains
Chinese skip-gram vectors with attnlab's Word2Vec, aligns them to the given English vectors with
supervised Procrustes on the CC-CEDICT seed dictionary, with and without self-learning refinement,
and scores P@1/P@5 zh→en and en→zh by cosine and by CSLS on the test dictionary.

    python benchmarks/align_zh_en.py --zh-corpus data/zh-mono/zh.txt --en-vectors runs/w2v-en \
        --train-dict data/cedict/train.tsv --test-dict data/cedict/test.tsv --fractions 0.25,0.5,1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

from attnlab.align.dictionary import read_pairs
from attnlab.align.procrustes import AlignConfig
from attnlab.align.space import align_vectors
from attnlab.word2vec.config import Word2VecConfig
from attnlab.word2vec.train import train
from attnlab.word2vec.vectors import WordVectors


def subsample_lines(path: Path, fraction: float, out: Path) -> Path:
    """Every round(1/fraction)-th line of `path`."""
    if fraction >= 1.0:
        return path
    step = round(1 / fraction)
    with open(path, encoding="utf-8") as f, open(out, "w", encoding="utf-8") as g:
        for i, line in enumerate(f):
            if i % step == 0:
                g.write(line)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--zh-corpus", type=Path, required=True, help="segmented Chinese text (attnlab data fetch zh-mono)")
    p.add_argument("--en-vectors", type=Path, required=True, help="English vectors folder (attnlab w2v train)")
    p.add_argument("--train-dict", type=Path, required=True, help="seed dictionary, zh TAB en")
    p.add_argument("--test-dict", type=Path, required=True, help="test dictionary, zh TAB en")
    p.add_argument("--fractions", default="0.25,0.5,1", help="comma-separated fractions of the Chinese corpus")
    p.add_argument("--refine", type=int, default=2, help="refinement rounds for the refined rows")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="Word2Vec threads")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    en = WordVectors.load(args.en_vectors)
    train_pairs, test_pairs = read_pairs(args.train_dict), read_pairs(args.test_dict)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for fraction in (float(f) for f in args.fractions.split(",")):
            corpus = subsample_lines(args.zh_corpus, fraction, Path(tmp) / f"zh-{fraction}.txt")
            zh, stats = train(corpus, Word2VecConfig(arch="skipgram", threads=args.threads), show_progress=False)
            for refine in (0, args.refine):
                space = align_vectors(zh, en, train_pairs, AlignConfig(refine=refine))
                scores = space.evaluate(test_pairs)
                rows.append({"fraction": fraction, "zh_words": stats.raw_words, "zh_vocab": len(zh),
                             "refine": refine, **scores})
                z, e = scores["zh-en"], scores["en-zh"]
                print(f"{fraction:5.2f} {stats.raw_words:>10,} zh words  refine {refine}: "
                      f"zh→en P@1/P@5 cosine {z['cosine']['p@1']:5.2f}/{z['cosine']['p@5']:5.2f} "
                      f"CSLS {z['csls']['p@1']:5.2f}/{z['csls']['p@5']:5.2f} | "
                      f"en→zh cosine {e['cosine']['p@1']:5.2f}/{e['cosine']['p@5']:5.2f} "
                      f"CSLS {e['csls']['p@1']:5.2f}/{e['csls']['p@5']:5.2f} "
                      f"(coverage {z['coverage']:.1f}% / {e['coverage']:.1f}%)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
