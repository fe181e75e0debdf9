"""From dictionary meaning to meaning in context: a word's static embedding against the encoder's vector
of it at every layer, in two or more sentences. The notes' example is 美女 in 美女，加一下微信吧。 ("hey
beautiful, add me on WeChat") and in 美女，麻烦让一让。 ("excuse me, miss, let me through"): the same
row of the embedding matrix, and after each layer of self-attention a vector that has taken in its
sentence.

For each sentence the word's vector at each stage is the mean of its pieces' vectors:

    embedding     its rows of the embedding matrix, × √D: the same in every sentence
    + position    what the first layer reads (the same too, when the word stands at the same position)
    layer l       the residual stream after encoder layer l (the last one after the final LayerNorm of a
                  pre-norm model: the memory the decoder attends to)

and measured by: the cosine between the sentences' vectors at each stage (1: nothing told them apart);
the cosine of each with its static embedding (how far context moved it); its nearest vocabulary pieces by
cosine against the embedding matrix; and its attention rows (the mean over heads and the word's pieces),
which say which pieces it took in at each layer. The stages are read with forward hooks during `encode`.

Shape letters: L encoder layers, H heads, S source pieces, D model width, V vocabulary.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlab.errors import AttnlabError
from attnlab.experiments.results import Results
from attnlab.translate.pytorch import Translator
from attnlab.viz.figure import cjk, new_figure, save

# (name for files, word, sentences): the notes' pair, a verb in two collocations, a word of many senses
CASES = (
    ("meinv", "美女", ("美女，加一下微信吧。", "美女，麻烦让一让。")),
    ("da", "打", ("我晚上给你打电话。", "我们下午去打球吧。")),
    ("yisi", "意思", ("这是什么意思？", "我不是这个意思。", "这本书很有意思。", "不好意思，我来晚了。")),
)
TOP = 5  # nearest pieces shown per stage


@dataclass
class WordInContext:
    sentence: str
    pieces: list[str]  # S source pieces
    span: list[int]  # indices of the word's pieces
    vectors: Tensor  # (stages, D) the word's vector at each stage
    every_piece: Tensor  # (stages, S, D) every piece's vector at each stage
    attention: Tensor  # (L, H, S) the word's attention rows (mean over its pieces)


@dataclass
class ContextStudy:
    word: str
    stages: list[str]
    contexts: list[WordInContext]
    neighbours: list[list[list[tuple[str, float]]]]  # per context, per stage: TOP (piece, cosine)

    def pair_cosines(self) -> dict[tuple[int, int], list[float]]:
        """Per pair of sentences (i < j), the cosine of the word's vectors at each stage."""
        return {(i, j): F.cosine_similarity(a.vectors, b.vectors, dim=-1).tolist()
                for (i, a), (j, b) in itertools.combinations(enumerate(self.contexts), 2)}

    def static_cosines(self) -> list[list[float]]:
        """Per sentence, the cosine of the word's vector at each stage with its static embedding."""
        return [F.cosine_similarity(c.vectors, c.vectors[:1], dim=-1).tolist() for c in self.contexts]

    def record(self) -> dict:
        return {"word": self.word, "stages": self.stages,
                "contexts": [{"sentence": c.sentence, "pieces": c.pieces, "word_pieces": c.span,
                              "cosine_to_static": [round(x, 4) for x in s],
                              "nearest": {stage: [[p, round(x, 3)] for p, x in n] for stage, n in zip(self.stages, nb)},
                              "attention": {f"layer {l + 1}": _top_keys(c, l) for l in range(c.attention.size(0))}}
                             for c, s, nb in zip(self.contexts, self.static_cosines(), self.neighbours)],
                "pair_cosines": {f"{i}-{j}": [round(x, 4) for x in cos] for (i, j), cos in self.pair_cosines().items()}}


def baseline(contexts: list[WordInContext]) -> list[float]:
    """Per stage, the mean cosine between any two pieces of different sentences: how alike unrelated
    vectors are anyway (a trained model's vectors share directions), the level a word's cosine is read against."""
    sums, count = None, 0
    for a, b in itertools.combinations(contexts, 2):
        cos = F.normalize(a.every_piece, dim=-1) @ F.normalize(b.every_piece, dim=-1).transpose(1, 2)  # (stages,Sa,Sb)
        sums = cos.sum((1, 2)) if sums is None else sums + cos.sum((1, 2))
        count += cos.size(1) * cos.size(2)
    return (sums / count).tolist()


def _top_keys(c: WordInContext, layer: int, k: int = 3) -> list[list]:
    """The k pieces the word attended to most at a layer (mean over heads), with their weights."""
    row = c.attention[layer].mean(0)  # (S,)
    top = row.topk(min(k, row.numel()))
    return [[c.pieces[i], round(w, 3)] for w, i in zip(top.values.tolist(), top.indices.tolist())]


def word_span(translator: Translator, pieces: list[str], word: str) -> list[int]:
    """Indices of the pieces that cover the first occurrence of `word` (normalised as the source is)."""
    target = "".join(translator.tokenizer.src_pieces(translator.encode([word])[0])).replace("▁", "")
    owner: list[int] = []  # piece index of each character of the joined sentence
    for i, piece in enumerate(pieces):
        owner += [i] * len(piece.replace("▁", ""))
    text = "".join(p.replace("▁", "") for p in pieces)
    at = text.find(target) if target else -1
    if at < 0:
        raise AttnlabError(f"--word {word!r} is not in the sentence {''.join(pieces).replace('▁', ' ').strip()!r}")
    return sorted(set(owner[at : at + len(target)]))


@torch.inference_mode()
def in_context(translator: Translator, sentence: str, word: str) -> tuple[list[str], WordInContext]:
    """The word's vector at every stage of the encoder, and its attention rows, in one sentence."""
    model, tok = translator.model.eval(), translator.tokenizer
    ids = translator.encode([sentence])[0]
    if not ids:
        raise AttnlabError(f"the sentence {sentence!r} is empty")
    pieces = tok.src_pieces(ids)
    span = word_span(translator, pieces, word)
    src = torch.tensor([ids])  # (1,S)
    seen: list[Tensor] = []  # (1,S,D) per stage after the embedding
    hooks = [model.positions.register_forward_hook(lambda _m, _a, out: seen.append(out))]
    hooks += [layer.register_forward_hook(lambda _m, _a, out: seen.append(out[0])) for layer in model.encoder]
    try:
        memory = model.encode(src, need_weights=True)
    finally:
        for h in hooks:
            h.remove()
    static = model.src_embed(src) * math.sqrt(model.cfg.d_model)  # (1,S,D)
    layers = seen[1:]
    layers[-1] = memory.states  # the last layer's output as the decoder reads it (after a pre-norm's LayerNorm)
    stages = ["embedding", "+ position"] + [f"layer {i + 1}" for i in range(len(layers))]
    every = torch.stack([s[0] for s in [static, seen[0], *layers]]).float()  # (stages,S,D)
    attention = torch.stack([w[0][:, span].mean(1) for w in memory.attention])  # (L,H,S)
    return stages, WordInContext(sentence, pieces, span, every[:, span].mean(1), every, attention.float())


def nearest(translator: Translator, vectors: Tensor, k: int = TOP) -> list[list[tuple[str, float]]]:
    """Per vector (stages, D), the k vocabulary pieces whose embedding rows are closest by cosine."""
    E = translator.model.src_embed.weight.detach().float()  # (V,D)
    cos = F.normalize(vectors, dim=-1) @ F.normalize(E, dim=-1).T  # (stages,V)
    cos[:, :4] = -2.0  # never the special pieces (<pad>, <unk>, <bos>, <eos>)
    top = cos.topk(k, dim=-1)
    return [[(translator.tokenizer.src.id_to_piece(i), v) for v, i in zip(vs, ix)]
            for vs, ix in zip(top.values.tolist(), top.indices.tolist())]


def study_word(translator: Translator, word: str, sentences: list[str]) -> ContextStudy:
    if len(sentences) < 2:
        raise AttnlabError(f"a word in context needs two sentences or more, got {len(sentences)}")
    found = [in_context(translator, s, word) for s in sentences]
    stages, contexts = found[0][0], [c for _, c in found]
    return ContextStudy(word, stages, contexts, [nearest(translator, c.vectors) for c in contexts])


def plot(study: ContextStudy, out: Path) -> Path:
    """Cosines by stage (left), and the word's attention rows per layer in each sentence (right)."""
    n = len(study.contexts)
    fig = new_figure(5 + 3.2 * n, 4.2)
    axes = fig.subplots(1, n + 1, width_ratios=[1.6] + [1.0] * n)
    x = range(len(study.stages))
    for (i, j), cos in study.pair_cosines().items():
        axes[0].plot(x, cos, "o-", label=f"sentence {i + 1} vs {j + 1}")
    for i, cos in enumerate(study.static_cosines()):
        axes[0].plot(x, cos, ":", color="grey", lw=1, label="each vs its embedding" if i == 0 else None)
    axes[0].set_xticks(list(x), study.stages, rotation=30, fontsize=8)
    axes[0].set_ylim(min(0.0, axes[0].get_ylim()[0]), 1.05)
    axes[0].set_title(f"{study.word}: cosine of its vectors", **cjk())
    axes[0].set_ylabel("cosine")
    axes[0].legend(fontsize=7)
    for i, (ax, c) in enumerate(zip(axes[1:], study.contexts)):
        rows = c.attention.mean(1).numpy()  # (L,S)
        ax.imshow(rows, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(c.pieces)), c.pieces, rotation=90, fontsize=8, **cjk())
        for tick in (t for k, t in enumerate(ax.get_xticklabels()) if k in c.span):
            tick.set_color("crimson")
        ax.set_yticks(range(rows.shape[0]), [f"layer {l + 1}" for l in range(rows.shape[0])], fontsize=8)
        ax.set_title(f"{i + 1}: {c.sentence}", fontsize=9, **cjk())
    save(fig, out)
    return out


def run(model_dir: Path, out_dir: Path, command: str, cases=CASES) -> Results:
    translator = Translator.load(model_dir)
    rows, records, pictures = [], [], []
    for name, word, sentences in cases:
        study = study_word(translator, word, list(sentences))
        picture = f"context-{name}.png"
        plot(study, out_dir / picture)
        pictures.append(picture)
        records.append(study.record())
        contexts = study.contexts
        for (i, j), cos in study.pair_cosines().items():
            rows.append({"word": word, "a": sentences[i], "b": sentences[j],
                         "pieces": f"{_word_pieces(contexts[i])} / {_word_pieces(contexts[j])}",
                         **{stage: round(c, 3) for stage, c in zip(study.stages, cos)}})
        rows.append({"word": word, "a": "(any piece of one sentence)", "b": "(any piece of another)",
                     **{stage: round(c, 3) for stage, c in zip(study.stages, baseline(contexts))}})
    stages = records[0]["stages"]
    return Results(
        study="context", command=command,
        title="a word's vector from the embedding through every encoder layer, in different sentences",
        columns=[("word", "word"), ("a", "sentence a"), ("b", "sentence b"), ("pieces", "its pieces")]
        + [(s, s) for s in stages],
        rows=rows, pictures=pictures, detail={"model": str(model_dir), "words": records},
        notes=["Cosine between the word's vectors in sentence a and sentence b at each stage (the mean of its "
               "pieces' vectors). 1 means the model has not told the two uses apart; the embedding column is 1 "
               "whenever the tokenizer cut the word into the same pieces. The rows in brackets are the baseline: "
               "the mean cosine between any two pieces of different sentences at that stage."],
        sections=[(f"{r['word']}: nearest pieces and attention", _word_markdown(r)) for r in records])


def _word_pieces(c: WordInContext) -> str:
    return " ".join(c.pieces[i] for i in c.span)


def _word_markdown(record: dict) -> str:
    lines = []
    last = record["stages"][-1]
    for i, c in enumerate(record["contexts"], 1):
        near = ", ".join(f"{p} {x:.2f}" for p, x in c["nearest"][last])
        attn = "; ".join(f"{layer}: " + ", ".join(f"{p} {w:.2f}" for p, w in top) for layer, top in c["attention"].items())
        moved = c["cosine_to_static"][-1]
        lines.append(f"{i}. {c['sentence']} — cosine to its embedding after the last layer {moved:.2f}; "
                     f"nearest pieces there: {near}; attended to most (mean over heads): {attn}")
    return "\n".join(lines)
