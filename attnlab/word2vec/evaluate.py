"""Scoring word vectors: Google analogies and word-similarity correlation.

Owns the two standard evaluations, computed the way gensim's `KeyedVectors` computes them so the
numbers are comparable: analogy accuracy with 3CosAdd over the `restrict` most frequent words
(Mikolov et al. 2013, `questions-words.txt`), questions with a word outside that vocabulary counted
as unknown and left out of the accuracy; Spearman's ρ between cosine similarity and human scores
(WordSim-353, Finkelstein et al. 2002; SimLex-999, Hill et al. 2015) over the pairs whose words
are known, unknown pairs counted. Matching is case-insensitive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from attnlab.errors import AttnlabError
from attnlab.fileio import read_utf8
from attnlab.word2vec.vectors import WordVectors

DEFAULT_RESTRICT = 30_000
QUERY_BATCH = 1024  # analogy questions scored per matrix product


def eval_files() -> dict[str, Path]:
    """The evaluation sets shipped in gensim's wheel (Google analogy, WordSim-353, SimLex-999)."""
    import importlib.util

    spec = importlib.util.find_spec("gensim")  # located, not imported (importing gensim.test logs a demo corpus)
    if spec is None or not spec.submodule_search_locations:
        raise AttnlabError("the standard evaluation sets come with gensim: pip install gensim==4.4.0, "
                           "or pass --analogy/--similarity files")
    folder = Path(list(spec.submodule_search_locations)[0]) / "test" / "test_data"
    files = {"analogy": folder / "questions-words.txt", "wordsim353": folder / "wordsim353.tsv",
             "simlex999": folder / "simlex999.txt"}
    for path in files.values():
        if not path.is_file():
            raise AttnlabError(f"{path}: missing from the gensim installation; pass --analogy/--similarity files")
    return files


@dataclass
class AnalogyResult:
    accuracy: float  # correct / answered (questions with all four words known)
    correct: int
    answered: int
    unknown: int  # questions skipped because a word is outside the restricted vocabulary
    sections: dict[str, float] = field(default_factory=dict)  # accuracy per section


@dataclass
class SimilarityResult:
    spearman: float
    pairs: int  # pairs scored
    unknown: int  # pairs with an unknown word
    unknown_words: list[str] = field(default_factory=list)


def _lower_index(vectors: WordVectors, restrict: int | None) -> dict[str, int]:
    """word.lower() -> row among the first `restrict` rows; the most frequent spelling wins."""
    limit = len(vectors) if restrict is None else min(restrict, len(vectors))
    index: dict[str, int] = {}
    for i in range(limit - 1, -1, -1):
        index[vectors.words[i].lower()] = i
    return index


def analogy(vectors: WordVectors, path: Path, restrict: int | None = DEFAULT_RESTRICT) -> AnalogyResult:
    """3CosAdd accuracy on a questions-words file (`: section` lines, then `a b c d`)."""
    text = read_utf8(path, "analogy file")
    index = _lower_index(vectors, restrict)
    questions: list[tuple[int, int, int, int]] = []
    section_of: list[str] = []
    section = ""
    unknown = 0
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        parts = line.lower().split()
        if not parts:
            continue
        if len(parts) != 4:
            raise AttnlabError(f"{path}:{n}: expected four words, got {line!r}")
        if all(p in index for p in parts):
            questions.append(tuple(index[p] for p in parts))
            section_of.append(section)
        else:
            unknown += 1
    limit = max(index.values()) + 1 if index else 0
    unit = vectors.unit()[:limit]  # (R, D)
    q = np.array(questions, dtype=np.int64).reshape(-1, 4)  # (Q, 4)
    hits = np.zeros(len(q), dtype=bool)
    for s in range(0, len(q), QUERY_BATCH):
        a, b, c, d = q[s:s + QUERY_BATCH].T
        query = unit[b] - unit[a] + unit[c]  # (B, D)
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
        scores = query @ unit.T  # (B, R)
        rows = np.arange(len(a))
        for col in (a, b, c):
            scores[rows, col] = -np.inf
        hits[s:s + len(a)] = scores.argmax(axis=1) == d
    sections: dict[str, float] = {}
    names = np.array(section_of)
    for name in dict.fromkeys(section_of):
        mask = names == name
        sections[name] = float(hits[mask].mean())
    correct = int(hits.sum())
    return AnalogyResult(correct / len(q) if len(q) else 0.0, correct, len(q), unknown, sections)


def similarity(vectors: WordVectors, path: Path, restrict: int | None = None) -> SimilarityResult:
    """Spearman ρ on a `word1 TAB word2 TAB score` file (`#` lines are comments)."""
    text = read_utf8(path, "similarity file")
    index = _lower_index(vectors, restrict)
    unit = vectors.unit()
    human, model, missing = [], [], []
    unknown = 0
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.lower().split("\t") if "\t" in line else line.lower().split()
        try:
            w1, w2, score = parts[0], parts[1], float(parts[2])
        except (IndexError, ValueError):
            raise AttnlabError(f"{path}:{n}: expected `word1 TAB word2 TAB score`, got {line!r}") from None
        if w1 in index and w2 in index:
            human.append(score)
            model.append(float(unit[index[w1]] @ unit[index[w2]]))
        else:
            unknown += 1
            missing.extend(w for w in (w1, w2) if w not in index)
    rho = float(spearmanr(human, model).statistic) if len(human) > 1 else float("nan")
    return SimilarityResult(rho, len(human), unknown, sorted(set(missing)))
