"""Token batching: budget respected, every example once, length-sorted; padding and <bos>/<eos>."""

import random

from attnlab.data.batching import collate, epoch_order, make_batches
from attnlab.tokenizer import BOS, EOS, PAD


def test_batches_cover_everything_within_budget():
    rng = random.Random(0)
    lengths = [(rng.randint(1, 40), rng.randint(1, 40)) for _ in range(500)]
    batches = make_batches(lengths, max_tokens=300)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        s_max, t_max = max(lengths[i][0] for i in b), max(lengths[i][1] for i in b)
        assert len(b) == 1 or len(b) * (s_max + t_max) <= 300
    # length-sorted buckets waste little padding
    padded = sum(len(b) * max(lengths[i][0] for i in b) for b in batches)
    assert padded < 1.2 * sum(s for s, _ in lengths)


def test_epoch_order_is_a_seeded_permutation():
    assert sorted(epoch_order(50, 1, 0)) == list(range(50))
    assert epoch_order(50, 1, 0) == epoch_order(50, 1, 0)
    assert epoch_order(50, 1, 0) != epoch_order(50, 1, 1)


def test_collate_pads_and_shifts():
    b = collate([[5, 6, 7], [8]], [[9, 10], [11, 12, 13]])
    assert b.src.tolist() == [[5, 6, 7], [8, PAD, PAD]]
    assert b.tgt_in.tolist() == [[BOS, 9, 10, PAD], [BOS, 11, 12, 13]]
    assert b.tgt_out.tolist() == [[9, 10, EOS, PAD], [11, 12, 13, EOS]]
    assert b.n_tgt_tokens == 7
