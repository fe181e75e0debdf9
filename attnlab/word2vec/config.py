"""Word2VecConfig: every knob of CBOW / skip-gram training, with word2vec's defaults.

Follows Mikolov et al. 2013 ("Efficient Estimation of Word Representations in Vector Space";
"Distributed Representations of Words and Phrases and their Compositionality") and the C tool's
defaults where the papers are silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from attnlab.errors import AttnlabError


@dataclass
class Word2VecConfig:
    arch: Literal["cbow", "skipgram"] = "cbow"  # predict the word from its context, or the context from the word
    dim: int = 100  # vector size D
    window: int = 5  # largest distance to a context word; each position draws a window in 1..window
    negative: int = 5  # noise words per positive pair (0 = no negative sampling)
    hs: bool = False  # hierarchical softmax over a Huffman tree (with or without negative sampling)
    min_count: int = 5  # words seen fewer times are dropped from the corpus
    max_vocab: int | None = None  # keep only this many most frequent words (None: all above min_count)
    sample: float = 1e-3  # subsampling threshold t: keep a word with prob (sqrt(f/t)+1)·t/f, f its frequency
    epochs: int = 5  # passes over the corpus
    alpha: float | None = None  # start learning rate; None = word2vec's default (0.05 CBOW, 0.025 skip-gram)
    min_alpha_ratio: float = 1e-4  # the rate decays linearly to alpha · this
    cbow_mean: bool = True  # CBOW averages the context vectors (True) or sums them
    ns_exponent: float = 0.75  # negative samples drawn from unigram^ns_exponent
    threads: int = 1  # worker threads (lock-free, as the C tool); 1 thread with a seed is deterministic
    seed: int = 1  # seeds the vector initialisation and each thread's random stream
    max_sentence_length: int = 10000  # longer lines are cut into pieces of this many words

    def __post_init__(self) -> None:
        if self.arch not in ("cbow", "skipgram"):
            raise AttnlabError(f"must be 'cbow' or 'skipgram', got {self.arch!r}", field="arch")
        for name in ("dim", "window", "epochs", "threads", "min_count", "max_sentence_length"):
            if getattr(self, name) < 1:
                raise AttnlabError(f"must be at least 1, got {getattr(self, name)}", field=name)
        if self.negative < 0:
            raise AttnlabError(f"must be >= 0, got {self.negative}", field="negative")
        if self.negative == 0 and not self.hs:
            raise AttnlabError("need negative sampling (negative > 0) or hierarchical softmax (hs)")
        if self.sample < 0:
            raise AttnlabError(f"must be >= 0, got {self.sample}", field="sample")
        if self.alpha is not None and self.alpha <= 0:
            raise AttnlabError(f"must be positive, got {self.alpha}", field="alpha")

    @property
    def start_alpha(self) -> float:
        if self.alpha is not None:
            return self.alpha
        return 0.05 if self.arch == "cbow" else 0.025
