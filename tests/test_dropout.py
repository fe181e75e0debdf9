"""The CPU dropout's fast path against what dropout must do: drop rate, scaling, gradient, seeding, eval."""

import pytest
import torch
import torch.nn.functional as F

from attnlab.nn.dropout import LANES, dropout, keep_mask


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_drop_rate_is_p(p):
    torch.manual_seed(0)
    keep = keep_mask(torch.Size([1_000_003]), p)  # an odd size: the last 64-bit draw is used in part
    rate = 1 - keep.float().mean().item()
    grid_p = round(p * LANES) / LANES
    sd = (grid_p * (1 - grid_p) / keep.numel()) ** 0.5
    assert abs(rate - grid_p) < 5 * sd, (rate, grid_p)


def test_masks_are_not_correlated_between_neighbours():
    """Four elements share one 64-bit draw: their keep decisions must still be independent."""
    torch.manual_seed(0)
    keep = keep_mask(torch.Size([400_000, 4]), 0.5).float()  # a row: one draw's four lanes
    corr = torch.corrcoef(keep.T)
    off_diagonal = corr[~torch.eye(4, dtype=torch.bool)]
    assert off_diagonal.abs().max() < 0.01


def test_kept_elements_scaled_dropped_zero_and_gradient_follows_the_mask():
    torch.manual_seed(0)
    x = (torch.rand(64, 33) + 0.5).requires_grad_()  # no zeros: a zero output means dropped
    y = dropout(x, 0.25, True)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    assert 0.15 < 1 - kept.float().mean().item() < 0.35
    g = torch.randn_like(y)
    y.backward(g)
    torch.testing.assert_close(x.grad, torch.where(kept, g / 0.75, torch.zeros_like(g)))


def test_same_seed_same_mask_and_eval_is_identity():
    x = torch.randn(10, 20)
    torch.manual_seed(3)
    a = dropout(x, 0.1, True)
    torch.manual_seed(3)
    b = dropout(x, 0.1, True)
    assert torch.equal(a, b)
    assert dropout(x, 0.1, False) is x
    assert dropout(x, 0.0, True) is x
    assert torch.equal(dropout(x, 1.0, True), F.dropout(x, 1.0, True))  # all dropped, as torch does


def test_expectation_matches_torch_dropout():
    """Readable path (F.dropout) and fast path agree in mean and in the share of zeros."""
    torch.manual_seed(0)
    x = torch.ones(2000, 500)
    fast, ref = dropout(x, 0.2, True), F.dropout(x, 0.2, True)
    assert abs(fast.mean().item() - ref.mean().item()) < 0.01
    assert abs((fast == 0).float().mean().item() - (ref == 0).float().mean().item()) < 0.005
