"""Translation quality with sacreBLEU: corpus BLEU and chrF, with several references per sentence.

Chinese targets are tokenised with sacreBLEU's `zh` tokenizer, English ones with `13a` (its default).
Sentences with fewer references than the most-referenced one get `None` in the missing streams
(sacreBLEU's variable-reference mode, signature `nrefs:var`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF


@dataclass
class Scores:
    bleu: float
    chrf: float
    bleu_signature: str
    chrf_signature: str
    bleu_detail: str  # sacreBLEU's one-line summary (n-gram precisions, brevity penalty)
    sentences: int


def bleu_tokenizer(tgt_lang: str) -> str:
    return "zh" if tgt_lang == "zh" else "13a"


def _streams(references: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """Per-sentence reference lists -> reference streams (one list per reference slot)."""
    n = max((len(r) for r in references), default=1)
    return [[refs[k] if k < len(refs) else None for refs in references] for k in range(n)]


def score(hypotheses: Sequence[str], references: Sequence[Sequence[str]], tgt_lang: str) -> Scores:
    """Corpus BLEU and chrF of hypotheses against one or more references each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    streams = _streams(references)
    bleu = BLEU(tokenize=bleu_tokenizer(tgt_lang))
    chrf = CHRF()
    b = bleu.corpus_score(list(hypotheses), streams)
    c = chrf.corpus_score(list(hypotheses), streams)
    return Scores(round(b.score, 2), round(c.score, 2), str(bleu.get_signature()), str(chrf.get_signature()),
                  str(b), len(hypotheses))
