"""Why add positions and not multiply them: the same model trained under one budget with each way of
mixing position into the embeddings (`model.positions`, see `attnlab/nn/positional.py`):

    add (the paper), multiply (x ⊙ PE), multiply1p (x ⊙ (1 + PE)), rotate (PE's angles turn x's pairs),
    learned (a trained table added), none

For each: dev loss and BLEU curves, test BLEU (the config's beam), and, comparing none with add, the test
sentences where the position-free model has the right words in the wrong order: its output shares many
words with the reference (unigram F1) but few word pairs (bigram F1), and add's output has more of them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnlab.config import POSITIONS, Config
from attnlab.experiments.budget import Budget, TrainedVariant, train_variant
from attnlab.experiments.curves import plot_curves
from attnlab.experiments.results import Results

VARIANTS = POSITIONS  # every kind, the paper's first


def words(text: str, lang: str) -> list[str]:
    """Lower-cased words (en) or characters (zh), punctuation dropped: what order is judged on."""
    if lang == "zh":
        return [c for c in text if c.strip() and re.match(r"\w", c)]
    return re.findall(r"\w+(?:'\w+)?", text.lower())


def ngram_f1(hyp: Sequence[str], ref: Sequence[str], n: int) -> float:
    """F1 of the n-grams two word lists share (counted with multiplicity)."""
    grams = lambda ws: Counter(tuple(ws[i : i + n]) for i in range(len(ws) - n + 1))  # noqa: E731
    h, r = grams(hyp), grams(ref)
    common = sum((h & r).values())
    if not common:
        return 0.0
    precision, recall = common / sum(h.values()), common / sum(r.values())
    return 2 * precision * recall / (precision + recall)


def scrambled(none: TrainedVariant, add: TrainedVariant, lang: str, k: int = 8) -> list[dict[str, Any]]:
    """Up to k test sentences where `none` has the reference's words (unigram F1 ≥ 0.5) but worse order than
    `add` (lower bigram F1), the largest unigram-minus-bigram gap first."""
    found = []
    for src, refs, h_none, h_add in zip(none.sources, none.references, none.hypotheses, add.hypotheses):
        ref = words(refs[0], lang)
        w_none, w_add = words(h_none, lang), words(h_add, lang)
        uni, bi = ngram_f1(w_none, ref, 1), ngram_f1(w_none, ref, 2)
        if len(ref) >= 3 and uni >= 0.5 and ngram_f1(w_add, ref, 2) > bi and w_none != w_add:
            found.append({"source": src, "reference": refs[0], "add": h_add, "none": h_none,
                          "none_unigram_f1": round(uni, 3), "none_bigram_f1": round(bi, 3),
                          "add_bigram_f1": round(ngram_f1(w_add, ref, 2), 3)})
    found.sort(key=lambda e: e["none_bigram_f1"] - e["none_unigram_f1"])
    return found[:k]


def run(cfg: Config, out_dir: Path, runs_dir: Path, budget: Budget, command: str,
        variants: Sequence[str] = VARIANTS, test_limit: int = 0, examples: int = 8) -> Results:
    """Train every variant, draw the curves, write the table and the scrambled sentences into out_dir."""
    trained = [train_variant(cfg, v, {"positions": v}, runs_dir, budget, test_limit) for v in variants]
    by_name = {v.name: v for v in trained}
    plot_curves(trained, out_dir / "positions-curves.png",
                f"positions: the same model, {budget.describe(cfg)} each ({cfg.direction})")
    rows = [v.row() for v in trained]
    results = Results(
        study="positions", command=command,
        title="how position enters the embedding, each trained under the same budget",
        columns=[("variant", "positions"), ("steps", "steps"), ("minutes", "minutes"), ("dev_loss", "dev loss"),
                 ("best_dev_bleu", "best dev BLEU"), ("test_bleu", "test BLEU"), ("test_chrf", "test chrF")],
        rows=rows, pictures=["positions-curves.png"],
        notes=[f"Budget: {budget.describe(cfg)} per variant; d_model {cfg.model.d_model}, "
               f"{cfg.model.n_encoder_layers}+{cfg.model.n_decoder_layers} layers, seed {cfg.train.seed}; "
               f"test BLEU with beam {cfg.decode.beam} on "
               + (f"the first {test_limit} test sentences." if test_limit else "the whole test split.")],
        detail={"curves": {v.name: v.curve for v in trained}})
    if "none" in by_name and "add" in by_name:
        found = scrambled(by_name["none"], by_name["add"], cfg.tgt_lang, examples)
        results.detail["scrambled"] = found
        results.sections.append(("Word order without positions", _examples_markdown(found)))
    return results


def _examples_markdown(found: list[dict[str, Any]]) -> str:
    if not found:
        return "No test sentence had the reference's words in a worse order without positions than with them."
    lines = ["Test sentences where the model without positions has the reference's words (unigram F1) but "
             "fewer of its word pairs (bigram F1) than the model with added positions:", ""]
    for e in found:
        lines += [f"- {e['source']}", f"  - reference: {e['reference']}", f"  - add: {e['add']}",
                  f"  - none: {e['none']} (unigram F1 {e['none_unigram_f1']}, bigram F1 {e['none_bigram_f1']}"
                  f" against add's {e['add_bigram_f1']})"]
    return "\n".join(lines)
