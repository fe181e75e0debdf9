"""Label-smoothed cross-entropy: fused == readable == F.cross_entropy(label_smoothing), values and gradients."""

import pytest
import torch
import torch.nn.functional as F

from attnlab.nn.loss import label_smoothed_fused, label_smoothed_readable


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
def test_fused_equals_readable_equals_torch(epsilon):
    torch.manual_seed(0)
    logits = torch.randn(37, 11, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 11, (37,))
    ref = F.cross_entropy(logits, target, label_smoothing=epsilon, reduction="sum")
    ref_nll = F.cross_entropy(logits, target, reduction="sum")
    results = []
    for fn in (label_smoothed_readable, label_smoothed_fused):
        loss, nll = fn(logits, target, epsilon)
        (grad,) = torch.autograd.grad(2.5 * loss, logits)
        torch.testing.assert_close(loss, ref)
        torch.testing.assert_close(nll, ref_nll.detach())
        results.append(grad)
    (ref_grad,) = torch.autograd.grad(2.5 * ref, logits)
    torch.testing.assert_close(results[0], ref_grad)
    torch.testing.assert_close(results[1], ref_grad)


def test_fused_gradcheck():
    logits = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    target = torch.randint(0, 7, (5,))
    assert torch.autograd.gradcheck(lambda z: label_smoothed_fused(z, target, 0.1)[0], (logits,))


def test_fused_blocks_and_no_grad_path_agree(monkeypatch):
    """Rows are processed a block at a time (here 4 rows of 11, the last block short); without a gradient
    the forward takes the logsumexp-only path: both give the readable path's values."""
    import attnlab.nn.loss as loss_mod

    monkeypatch.setattr(loss_mod, "BLOCK_BYTES", 4 * 11 * 8)
    torch.manual_seed(1)
    logits = 4 * torch.randn(37, 11, dtype=torch.float64, requires_grad=True)
    logits.retain_grad()
    target = torch.randint(0, 11, (37,))
    ref_loss, ref_nll = label_smoothed_readable(logits, target, 0.1)
    (ref_grad,) = torch.autograd.grad(ref_loss, logits)
    loss, nll = label_smoothed_fused(logits, target, 0.1)
    (grad,) = torch.autograd.grad(loss, logits)
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(nll, ref_nll.detach())
    torch.testing.assert_close(grad, ref_grad)
    with torch.no_grad():
        loss0, nll0 = label_smoothed_fused(logits, target, 0.1)
    torch.testing.assert_close(loss0, ref_loss.detach())
    torch.testing.assert_close(nll0, ref_nll.detach())
