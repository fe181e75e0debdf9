"""Label-smoothed cross-entropy (Szegedy et al. 2016; Vaswani et al. 2017, section 5.4), two ways.

For logits z (N,V), targets y (N,) and ε: with log p = log_softmax(z),
    loss_i = (1 - ε) · (-log p[y_i]) + ε · mean_v(-log p[v])      (= F.cross_entropy(label_smoothing=ε))
`label_smoothed_readable` writes that down with autograd; `label_smoothed_fused` computes the same
with the closed-form gradient softmax(z) - ((1-ε)·onehot(y) + ε/V), never materialising log p. It
works through z a block of rows at a time, small enough to stay in cache: each block's logsumexp and,
when z needs a gradient, the block's gradient are computed in the forward pass while the block is
there, so the (N, V) output layer is read once and the gradient written once; the backward pass only
scales the stored gradient. Both return (summed loss, summed NLL); the NLL carries no gradient in the
fused path.

Shape letters: N target positions, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor


def label_smoothed_readable(logits: Tensor, target: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
    logp = logits.log_softmax(dim=-1)  # (N,V)
    nll = -logp.gather(1, target.unsqueeze(1)).squeeze(1)  # (N,)
    smooth = -logp.mean(dim=-1)  # (N,)
    return ((1 - epsilon) * nll + epsilon * smooth).sum(), nll.sum()


BLOCK_BYTES = 1 << 19  # rows of z per block: about this many bytes, so that a block stays in L2


class _FusedLabelSmoothedCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
        n, v = logits.shape
        lse = torch.empty(n, dtype=logits.dtype, device=logits.device)  # (N,)
        grad = torch.empty_like(logits) if ctx.needs_input_grad[0] else None  # (N,V) softmax(z) so far
        rows = max(1, BLOCK_BYTES // (v * logits.element_size()))
        for i in range(0, n, rows):
            block = logits[i : i + rows]  # (R,V)
            if grad is None:
                lse[i : i + rows] = torch.logsumexp(block, dim=1)
                continue
            peak = block.amax(dim=1, keepdim=True)  # (R,1)
            e = torch.sub(block, peak, out=grad[i : i + rows]).exp_()  # (R,V) exp(z - max)
            total = e.sum(dim=1, keepdim=True)  # (R,1)
            lse[i : i + rows] = (peak + total.log()).squeeze(1)
            e.div_(total)  # softmax of the block
        nll = lse - logits.gather(1, target.unsqueeze(1)).squeeze(1)  # (N,)
        smooth = lse - logits.mean(dim=-1)  # (N,)
        nll_sum = nll.sum()
        ctx.mark_non_differentiable(nll_sum)
        if grad is not None:  # d loss / d z = softmax(z) - ((1-ε)·onehot(y) + ε/V)
            grad.sub_(epsilon / v)
            grad[torch.arange(n, device=grad.device), target] -= 1 - epsilon
            ctx.save_for_backward(grad)
        return ((1 - epsilon) * nll + epsilon * smooth).sum(), nll_sum

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_nll: Tensor) -> tuple[Tensor, None, None]:
        (grad,) = ctx.saved_tensors
        return grad * grad_loss, None, None  # not in place: a retained graph may run backward again


def label_smoothed_fused(logits: Tensor, target: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
    return _FusedLabelSmoothedCE.apply(logits, target, epsilon)
