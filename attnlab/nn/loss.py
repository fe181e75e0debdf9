"""Label-smoothed cross-entropy (Szegedy et al. 2016; Vaswani et al. 2017, section 5.4), two ways.

For logits z (N,V), targets y (N,) and ε: with log p = log_softmax(z),
    loss_i = (1 - ε) · (-log p[y_i]) + ε · mean_v(-log p[v])      (= F.cross_entropy(label_smoothing=ε))
`label_smoothed_readable` writes that down with autograd; `label_smoothed_fused` computes the same
with one logsumexp forward and the closed-form gradient softmax(z) - ((1-ε)·onehot(y) + ε/V),
never materialising log p: on the (N, V) output layer that halves the loss's passes over memory.
Both return (summed loss, summed NLL); the NLL carries no gradient in the fused path.

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


class _FusedLabelSmoothedCE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, target: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
        lse = torch.logsumexp(logits, dim=-1)  # (N,)
        nll = lse - logits.gather(1, target.unsqueeze(1)).squeeze(1)  # (N,)
        smooth = lse - logits.mean(dim=-1)  # (N,)
        ctx.save_for_backward(logits, lse, target)
        ctx.epsilon = epsilon
        nll_sum = nll.sum()
        ctx.mark_non_differentiable(nll_sum)
        return ((1 - epsilon) * nll + epsilon * smooth).sum(), nll_sum

    @staticmethod
    def backward(ctx, grad_loss: Tensor, _grad_nll: Tensor) -> tuple[Tensor, None, None]:
        logits, lse, target = ctx.saved_tensors
        eps, v = ctx.epsilon, logits.size(1)
        grad = torch.sub(logits, lse.unsqueeze(1)).exp_()  # softmax (N,V)
        grad.sub_(eps / v)
        rows = torch.arange(grad.size(0), device=grad.device)
        grad[rows, target] -= 1 - eps
        return grad.mul_(grad_loss), None, None


def label_smoothed_fused(logits: Tensor, target: Tensor, epsilon: float) -> tuple[Tensor, Tensor]:
    return _FusedLabelSmoothedCE.apply(logits, target, epsilon)
