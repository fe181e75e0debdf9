"""Settings of the cross-lingual word spaces that the command line builds: plain data, no numpy.

Owns `JointConfig` (how the pseudo-bilingual corpus of attnlab/align/joint.py is built and the
joint space searched), `CSLS_K`, the neighbourhood size of CSLS (Conneau et al. 2018), and `POOLS`,
the ways attnlab/align/sentences.py pools a sentence's encoder states, so that `attnlab align --help`
can show the defaults and choices without importing numpy, torch or the Word2Vec trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnlab.errors import AttnlabError

CSLS_K = 10  # neighbourhood size of the CSLS penalty, as in Conneau et al.
POOLS = ("mean", "max")  # a sentence's vector: the mean or the elementwise max of its encoder states


@dataclass(frozen=True)
class JointConfig:
    """How the pseudo-bilingual corpus is built and the joint space searched."""

    pair_copies: int = 16  # times each parallel pair enters the corpus, shuffled afresh each time (on the dev
    # dictionary, zh→en P@1 rose 15.7 → 17.7 → 19.0 % from 4 to 8 to 16 copies; BENCHMARKS.md)
    anchor_copies: int = 0  # times each dictionary pair enters as a two-word sentence (0: none)
    switch: float = 0.0  # chance that a monolingual word with a dictionary translation is replaced by one
    max_vocab: int = 50_000  # most frequent words per language searched (as AlignConfig.max_vocab; 0: all)
    center: bool = True  # remove each language's mean vector before the search, as the Procrustes baseline does
    csls_k: int = CSLS_K  # neighbourhood size of CSLS
    seed: int = 1  # seeds the shuffles, the code-switching draws and the sentence order

    def __post_init__(self) -> None:
        for name in ("pair_copies", "anchor_copies", "max_vocab"):
            if getattr(self, name) < 0:
                raise AttnlabError(f"must be >= 0, got {getattr(self, name)}", field=name)
        if not 0.0 <= self.switch <= 1.0:
            raise AttnlabError(f"must be a probability in [0, 1], got {self.switch}", field="switch")
        if self.csls_k < 1:
            raise AttnlabError(f"must be at least 1, got {self.csls_k}", field="csls_k")
