"""Attention: readable path == fused path == nn.MultiheadAttention (values and gradients); masks; KV cache."""

import math

import pytest
import torch
from torch import nn

from attnlab.nn.attention import KVCache, MultiHeadAttention, attention_fused, attention_readable, causal_mask

torch.manual_seed(0)


def _qkv(b=2, h=3, t=5, s=7, d=8, grad=False):
    return [torch.randn(b, h, n, d, dtype=torch.float64, requires_grad=grad) for n in (t, s, s)]


@pytest.mark.parametrize("mask_kind", ["none", "padding", "causal"])
def test_readable_equals_fused_values_and_grads(mask_kind):
    q, k, v = _qkv(t=6, s=6, grad=True)
    mask = None
    if mask_kind == "padding":
        mask = torch.ones(2, 1, 1, 6, dtype=torch.bool)
        mask[1, ..., 4:] = False
    elif mask_kind == "causal":
        mask = causal_mask(6, 6)
    out_r, w = attention_readable(q, k, v, mask)
    grads_r = torch.autograd.grad(out_r.square().sum(), (q, k, v))
    out_f = attention_fused(q, k, v, mask)
    grads_f = torch.autograd.grad(out_f.square().sum(), (q, k, v))
    torch.testing.assert_close(out_r, out_f)
    for a, b in zip(grads_r, grads_f):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))
    if mask is not None:
        assert (w.masked_select(~mask.expand_as(w)) == 0).all()


def test_scores_are_scaled_by_sqrt_dk():
    q, k, v = _qkv(b=1, h=1, t=1, s=2, d=4)
    _, w = attention_readable(q, k, v)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(4)
    torch.testing.assert_close(w, scores.softmax(-1))


def test_causal_mask_with_offset():
    m = causal_mask(2, 4)  # the last 2 of 4 positions
    assert m.tolist() == [[True, True, True, False], [True, True, True, True]]


def _copy_to_reference(ours: MultiHeadAttention, ref: nn.MultiheadAttention) -> None:
    with torch.no_grad():
        if ours.self_attention:
            ref.in_proj_weight.copy_(ours.in_proj.weight)
            ref.in_proj_bias.copy_(ours.in_proj.bias)
        else:
            ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.kv_proj.weight]))
            ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.kv_proj.bias]))
        ref.out_proj.weight.copy_(ours.out_proj.weight)
        ref.out_proj.bias.copy_(ours.out_proj.bias)


@pytest.mark.parametrize("self_attention", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_multihead_equals_torch_multihead(self_attention, fused):
    d, h = 16, 4
    ours = MultiHeadAttention(d_model=d, n_heads=h, self_attention=self_attention, fused=fused).double()
    ref = nn.MultiheadAttention(d, h, batch_first=True).double()
    _copy_to_reference(ours, ref)
    x = torch.randn(3, 5, d, dtype=torch.float64, requires_grad=True)
    mem = x if self_attention else torch.randn(3, 7, d, dtype=torch.float64, requires_grad=True)
    pad = torch.zeros(3, mem.size(1), dtype=torch.bool)
    pad[0, -2:] = True  # key padding, True = ignore (nn.MultiheadAttention's convention)
    got = ours(x, memory=None if self_attention else mem, mask=~pad[:, None, None, :], need_weights=not fused)
    want, want_w = ref(x, mem, mem, key_padding_mask=pad, average_attn_weights=False)
    torch.testing.assert_close(got.out, want)
    if not fused:
        torch.testing.assert_close(got.weights, want_w)
    g_ours = torch.autograd.grad(got.out.sum(), [x, *ours.parameters()])
    g_ref = torch.autograd.grad(want.sum(), [x])
    torch.testing.assert_close(g_ours[0], g_ref[0])
    ref_params = dict(ref.named_parameters())
    ref_grads = torch.autograd.grad(ref(x, mem, mem, key_padding_mask=pad)[0].sum(), list(ref_params.values()))
    ref_grads = dict(zip(ref_params, ref_grads))
    ours_grads = dict(zip([n for n, _ in ours.named_parameters()], g_ours[1:]))
    torch.testing.assert_close(ours_grads["out_proj.weight"], ref_grads["out_proj.weight"])
    in_w = ours_grads["in_proj.weight"] if self_attention else torch.cat([ours_grads["q_proj.weight"], ours_grads["kv_proj.weight"]])
    torch.testing.assert_close(in_w, ref_grads["in_proj_weight"])


def test_causal_self_attention_with_cache_equals_full():
    d = 16
    attn = MultiHeadAttention(d_model=d, n_heads=4).double().eval()
    x = torch.randn(2, 6, d, dtype=torch.float64)
    full = attn(x, is_causal=True).out
    cache = KVCache()
    steps = [attn(x[:, i : i + 1], is_causal=True, cache=cache).out for i in range(6)]
    torch.testing.assert_close(torch.cat(steps, 1), full)
    # two positions at a time through the cache (causal mask offset by the cached length)
    cache = KVCache()
    chunks = [attn(x[:, i : i + 2], is_causal=True, cache=cache).out for i in range(0, 6, 2)]
    torch.testing.assert_close(torch.cat(chunks, 1), full)


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="n_heads \\(3\\) must divide d_model \\(16\\)"):
        MultiHeadAttention(d_model=16, n_heads=3)


def test_kv_cache_grows_and_reorders():
    """Past its first capacity the cache keeps every position; select reorders rows, and appends go on after it."""
    cache = KVCache()
    ks = [torch.randn(3, 2, 1, 4) for _ in range(40)]
    for k in ks:
        got_k, got_v = cache.append(k, -k)
    torch.testing.assert_close(got_k, torch.cat(ks, 2))
    torch.testing.assert_close(got_v, -torch.cat(ks, 2))
    index = torch.tensor([2, 0, 0])
    cache.select(index)
    new = torch.randn(3, 2, 1, 4)
    got_k, _ = cache.append(new, new)
    torch.testing.assert_close(got_k, torch.cat([torch.cat(ks, 2)[index], new], 2))
    assert cache.length == 41


@pytest.mark.parametrize("need_weights", [False, True])
def test_cross_attention_memory_shared_by_beams(need_weights):
    """K query rows per memory row (the beams of a sentence) equal the memory repeated K times."""
    attn = MultiHeadAttention(d_model=16, n_heads=4, self_attention=False).double().eval()
    x = torch.randn(6, 2, 16, dtype=torch.float64)  # 3 sentences × 2 beams
    memory = torch.randn(3, 5, 16, dtype=torch.float64)
    mask = torch.ones(3, 1, 1, 5, dtype=torch.bool)
    mask[1, ..., 3:] = False
    shared = attn(x, kv=attn.project_kv(memory), mask=mask, need_weights=need_weights)
    repeated = attn(x, memory=memory.repeat_interleave(2, 0), mask=mask.repeat_interleave(2, 0), need_weights=need_weights)
    torch.testing.assert_close(shared.out, repeated.out)
    if need_weights:
        torch.testing.assert_close(shared.weights, repeated.weights)
