"""A labelled 2-D map of word vectors: Word2Vec output, or a translation model's own embedding matrix.

Input is a vectors folder (`WordVectors.load`: vectors.safetensors + vocab.tsv, or a word2vec .bin/.txt)
or a run directory, whose source embedding matrix gives one vector per subword piece (the special
pieces <pad>, <bos>, <eos>, <unk> left out). The words to draw are the N most frequent (a vectors
folder is stored most frequent first; a run's pieces in vocabulary order) or those listed in a file.

The projection is PCA (`pca_2d`, by SVD: the two directions of largest variance, a linear map: distances
along them are real; the bilingual map uses it too) or t-SNE (van der Maaten & Hinton 2008, scikit-learn's:
keeps neighbourhoods, not distances). `plot_embeddings` takes an optional group per word (drawn in its own
colour), so the same map serves vectors of two languages.

Shape letters: N words drawn, D vector width.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnlab.errors import AttnlabError
from attnlab.fileio import read_utf8
from attnlab.tokenizer import SPECIALS
from attnlab.word2vec.vectors import WordVectors
from attnlab.viz.figure import Saved, cjk, new_figure, save

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne")
N_SPECIAL = len(SPECIALS)  # <pad> <bos> <eos> <unk>: ids 0..3 of every attnlab tokenizer
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass
class EmbeddingsPicture:
    """What the embeddings map drew."""

    words: list[str]  # N labels
    coords: np.ndarray  # (N, 2) positions of the points, read back from the scatter
    method: str  # pca or tsne
    explained: np.ndarray | None  # (2,) PCA: fraction of the variance along each axis; None for t-SNE
    groups: list[str] | None = None  # N group names (one colour each), when given
    saved: Saved | None = None


def is_run_dir(path: Path) -> bool:
    from attnlab import checkpoint

    return (path / checkpoint.CONFIG_FILE).is_file() and (path / checkpoint.WEIGHTS_FILE).is_file()


def model_vectors(run_dir: str | Path) -> WordVectors:
    """The source embedding matrix of a trained run, one row per subword piece (specials left out)."""
    from attnlab import checkpoint

    run = checkpoint.load_run(run_dir)
    weight = run.model.src_embed.weight.detach().float().numpy()  # (V, D)
    pieces = run.tokenizer.src_pieces(range(N_SPECIAL, weight.shape[0]))
    return WordVectors(pieces, weight[N_SPECIAL:])


def load_any(path: str | Path) -> WordVectors:
    """A vectors folder or file, or a run directory's embedding matrix."""
    path = Path(path)
    if path.is_dir() and is_run_dir(path):
        return model_vectors(path)
    return WordVectors.load(path)


def read_words(path: str | Path) -> list[str]:
    """One word per line; blank lines and lines starting with # are skipped."""
    words = [ln.strip() for ln in read_utf8(path, "words file").splitlines()]
    return [w for w in words if w and not w.startswith("#")]


def choose(vectors: WordVectors, words: list[str] | None = None, top: int = 300) -> tuple[list[str], np.ndarray]:
    """The labels and (N, D) vectors to draw: `words` (a subword piece also matches with its ▁ prefix) or the `top` first."""
    if words is None:
        if top < 2:
            raise AttnlabError(f"--top must be at least 2, got {top}")
        chosen = vectors.words[:top]
    else:
        chosen, missing = [], []
        for w in words:
            hit = w if w in vectors else ("▁" + w if "▁" + w in vectors else None)
            (chosen if hit else missing).append(hit or w)
        if missing:
            log.warning("not in the vocabulary, left out: %s", " ".join(missing))
        chosen = list(dict.fromkeys(chosen))
    if len(chosen) < 2:
        raise AttnlabError(f"need at least 2 words with vectors to draw a map, found {len(chosen)}")
    return chosen, np.stack([vectors[w] for w in chosen])


def project(vectors: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """(N, D) -> (N, 2) coordinates, and for PCA the fraction of variance each axis explains."""
    from sklearn.manifold import TSNE

    x = np.asarray(vectors, dtype=np.float64)
    if method == "pca":
        xy, explained = pca_2d(x)
        return xy, np.array(explained)
    if method == "tsne":
        perplexity = min(30.0, (len(x) - 1) / 3)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x), None
    raise AttnlabError(f"unknown projection {method!r}; choose one of {', '.join(METHODS)}")


def pca_axes(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """The rows' mean (D,), their first two principal axes (2, D) and the share of the variance on
    each; each axis is signed so that its largest loading is positive (the same words give the same
    picture), and a missing second axis (fewer than 3 rows) is zero."""
    if x.shape[0] < 2:
        raise AttnlabError(f"a 2-D map needs at least 2 words, got {x.shape[0]}")
    mean = x.astype(np.float64).mean(axis=0)  # (D,)
    _, s, vt = np.linalg.svd(x.astype(np.float64) - mean, full_matrices=False)  # vt: (min(N, D), D)
    axes = np.pad(vt[:2], ((0, 2 - len(vt[:2])), (0, 0)))  # (2, D)
    axes *= np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])[:, None]
    var = s**2 / max(float(np.sum(s**2)), 1e-12)
    return mean, axes, (float(var[0]), float(var[1]) if len(var) > 1 else 0.0)


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """First two principal components of the rows: (N, D) -> ((N, 2), variance shares), as `pca_axes`."""
    mean, axes, explained = pca_axes(x)
    xy = (x.astype(np.float64) - mean) @ axes.T  # (N, 2)
    return xy.astype(np.float32), explained


def script_groups(words: list[str]) -> list[str]:
    """'zh' for pieces with a Chinese character, 'en' for the rest (a joint vocabulary holds both)."""
    return ["zh" if _CJK.search(w) else "en" for w in words]


def plot_embeddings(words: list[str], vectors: np.ndarray, out: str | Path, method: str = "pca",
                    groups: list[str] | None = None, title: str = "", seed: int = 0) -> EmbeddingsPicture:
    """Project (N, D) vectors to 2-D and draw them as labelled points into `out` (.png or .svg)."""
    if len(words) != len(vectors):
        raise AttnlabError(f"{len(words)} labels for {len(vectors)} vectors")
    if groups is not None and len(groups) != len(words):
        raise AttnlabError(f"{len(groups)} groups for {len(words)} words")
    coords, explained = project(vectors, method, seed)
    fig = new_figure(10, 9)
    ax = fig.subplots()
    names = list(dict.fromkeys(groups)) if groups is not None else [""]
    drawn = np.empty((len(words), 2))
    for color, name in zip(("tab:blue", "tab:red", "tab:green", "tab:purple"), names):
        idx = [i for i in range(len(words)) if groups is None or groups[i] == name]
        points = ax.scatter(coords[idx, 0], coords[idx, 1], s=10, color=color, label=name or None)
        drawn[idx] = points.get_offsets()
        for i in idx:
            ax.annotate(words[i], coords[i], fontsize=10 if len(words) <= 50 else 7, color=color, xytext=(2, 2), textcoords="offset points", **cjk())
    if groups is not None:
        ax.legend(fontsize=9)
    if explained is not None:
        ax.set(xlabel=f"PC 1 ({explained[0]:.0%} of the variance)", ylabel=f"PC 2 ({explained[1]:.0%})")
    else:
        ax.set(xlabel="t-SNE 1", ylabel="t-SNE 2")
    ax.set_title(title or f"{len(words)} words, {method.upper()}", **cjk())
    picture = EmbeddingsPicture(list(words), drawn, method, explained, groups)
    picture.saved = save(fig, out)
    return picture
