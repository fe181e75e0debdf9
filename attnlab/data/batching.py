"""Token-count batching over length-sorted buckets, as in the paper (section 5.1) and fairseq.

Pairs are sorted by length so that each batch holds sentences of similar length (little padding),
cut into batches whose padded size B × (S_max + T_max) stays within `max_tokens`, and the batch order
is shuffled each epoch with a seed, so a run (and a resumed run) sees the same batches.

Shape letters: B sentences in a batch, S source length, T target length (with <bos>/<eos>).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from attnlab.tokenizer import BOS, EOS, PAD


@dataclass
class Batch:
    src: Tensor  # (B, S) source ids, right-padded
    tgt_in: Tensor  # (B, T) <bos> (or a target-language tag) + target ids, right-padded
    tgt_out: Tensor  # (B, T) target ids + <eos>, right-padded
    n_tgt_tokens: int  # non-pad target tokens (what the loss is averaged over)

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.src.to(device), self.tgt_in.to(device), self.tgt_out.to(device), self.n_tgt_tokens)


def make_batches(lengths: Sequence[tuple[int, int]], max_tokens: float,
                 groups: Sequence[int] | None = None) -> list[list[int]]:
    """Group example indices into batches of similar length with B × (S_max + T_max) ≤ max_tokens (training
    pairs; and translation, in `attnlab.translate.base.length_batches`). With `groups`, a batch also ends where
    the group of the length-sorted examples changes."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i][0], lengths[i][1], i))
    batches: list[list[int]] = []
    current: list[int] = []
    s_max = t_max = 0
    for i in order:
        s, t = lengths[i]
        new_s, new_t = max(s_max, s), max(t_max, t)
        if current and ((len(current) + 1) * (new_s + new_t) > max_tokens
                        or (groups is not None and groups[i] != groups[current[0]])):
            batches.append(current)
            current, new_s, new_t = [], s, t
        current.append(i)
        s_max, t_max = new_s, new_t
    if current:
        batches.append(current)
    return batches


def epoch_order(n_batches: int, seed: int, epoch: int) -> list[int]:
    """The shuffled batch order of one epoch: a function of (seed, epoch) only."""
    order = list(range(n_batches))
    random.Random(seed * 1_000_003 + epoch).shuffle(order)
    return order


def collate(src: Sequence[Sequence[int]], tgt: Sequence[Sequence[int]],
            start: Sequence[int] | None = None) -> Batch:
    """Pad one batch: src ids as given; target gets its start id in front (input; <bos> unless `start` gives
    one per sentence) and <eos> behind (output)."""
    t_len = max(len(y) for y in tgt) + 1
    tgt_in = _padded([[BOS, *y] for y in tgt] if start is None else [[s, *y] for s, y in zip(start, tgt)], t_len)
    tgt_out = _padded([[*y, EOS] for y in tgt], t_len)
    return Batch(pad_sources(src), tgt_in, tgt_out, sum(len(y) + 1 for y in tgt))


def pad_sources(src: Sequence[Sequence[int]]) -> Tensor:
    """(B, S) right-padded source ids (at least one column)."""
    return _padded(src, max(1, max((len(x) for x in src), default=1)))


def _padded(rows: Sequence[Sequence[int]], length: int) -> Tensor:
    """(len(rows), length) long tensor of the rows, right-padded with PAD (built as one list: one copy)."""
    return torch.tensor([[*x, *[PAD] * (length - len(x))] for x in rows], dtype=torch.long).view(len(rows), length)
