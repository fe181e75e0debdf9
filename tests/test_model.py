"""The full model: equal to nn.Transformer with copied weights; positional encoding; causality;
one-hot × embedding matrix; overfitting a tiny batch."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.config import ModelConfig
from attnlab.model import Seq2SeqTransformer
from attnlab.nn.positional import sinusoidal_table

D, H, FF, V = 32, 4, 64, 50


def tiny(**kw) -> Seq2SeqTransformer:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=V, d_model=D, n_heads=H, d_ff=FF, n_encoder_layers=2, n_decoder_layers=2,
                      dropout=0.0, **kw)
    return Seq2SeqTransformer(cfg).double()


def _copy_layer_weights(ours: Seq2SeqTransformer, ref: nn.Transformer) -> None:
    def mha(dst, src, cross=False):
        if cross:
            src.in_proj_weight.copy_(torch.cat([dst.q_proj.weight, dst.kv_proj.weight]))
            src.in_proj_bias.copy_(torch.cat([dst.q_proj.bias, dst.kv_proj.bias]))
        else:
            src.in_proj_weight.copy_(dst.in_proj.weight)
            src.in_proj_bias.copy_(dst.in_proj.bias)
        src.out_proj.load_state_dict(dst.out_proj.state_dict())

    with torch.no_grad():
        for o, r in zip(ours.encoder, ref.encoder.layers):
            mha(o.self_attn, r.self_attn)
            r.linear1.load_state_dict(o.ffn.linear1.state_dict())
            r.linear2.load_state_dict(o.ffn.linear2.state_dict())
            r.norm1.load_state_dict(o.res_attn.norm.state_dict())
            r.norm2.load_state_dict(o.res_ffn.norm.state_dict())
        for o, r in zip(ours.decoder, ref.decoder.layers):
            mha(o.self_attn, r.self_attn)
            mha(o.cross_attn, r.multihead_attn, cross=True)
            r.linear1.load_state_dict(o.ffn.linear1.state_dict())
            r.linear2.load_state_dict(o.ffn.linear2.state_dict())
            r.norm1.load_state_dict(o.res_self.norm.state_dict())
            r.norm2.load_state_dict(o.res_cross.norm.state_dict())
            r.norm3.load_state_dict(o.res_ffn.norm.state_dict())


@pytest.mark.parametrize("norm_first", [False, True])
def test_equals_nn_transformer_with_copied_weights(norm_first):
    """nn.Transformer always ends each stack with a LayerNorm. Post-norm (the paper): we neutralise it
    (set it to None), since the last layer already normalises. Pre-norm: we copy our final norms into it."""
    ours = tiny(norm_first=norm_first)
    ref = nn.Transformer(D, H, 2, 2, FF, dropout=0.0, batch_first=True, norm_first=norm_first).double()
    _copy_layer_weights(ours, ref)
    if norm_first:
        ref.encoder.norm.load_state_dict(ours.encoder_norm.state_dict())
        ref.decoder.norm.load_state_dict(ours.decoder_norm.state_dict())
    else:
        ref.encoder.norm = None
        ref.decoder.norm = None
    src = torch.tensor([[5, 6, 7, 8, 9], [10, 11, 12, 0, 0]])
    tgt = torch.tensor([[1, 20, 21, 22], [1, 30, 31, 0]])
    ours.train(), ref.train()  # dropout is 0; train mode keeps nn.Transformer off its inference fast path
    hidden = ours.decode(tgt, memory=ours.encode(src)).hidden
    x_src, x_tgt = ours._embed(ours.src_embed, src), ours._embed(ours.tgt_embed, tgt)
    want = ref(x_src, x_tgt, tgt_mask=ref.generate_square_subsequent_mask(4, dtype=torch.float64),
               src_key_padding_mask=src == 0, memory_key_padding_mask=src == 0, tgt_is_causal=True)
    keep = tgt != 0  # outputs at padded target positions are never used
    torch.testing.assert_close(hidden[keep], want[keep])
    g = torch.autograd.grad(hidden[keep].sum(), ours.encoder[0].ffn.linear1.weight)[0]
    g_ref = torch.autograd.grad(want[keep].sum(), ref.encoder.layers[0].linear1.weight)[0]
    torch.testing.assert_close(g, g_ref)


def test_positional_encoding_matches_formula():
    d, n = 16, 30
    table = sinusoidal_table(n, d)
    for pos in (0, 1, 7, 29):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)


def test_positional_table_grows_for_long_inputs():
    model = tiny(max_positions=8)
    src = torch.randint(4, V, (1, 20))
    assert model.encode(src).states.shape == (1, 20, D)
    torch.testing.assert_close(model.positions.table[:20], sinusoidal_table(20, D))


def test_future_token_cannot_change_earlier_outputs():
    model = tiny().eval()
    src = torch.randint(4, V, (2, 6))
    tgt = torch.randint(4, V, (2, 7))
    changed = tgt.clone()
    changed[:, 4:] = torch.randint(4, V, (2, 3))
    memory = model.encode(src)
    a = model.decode(tgt, memory=memory).hidden
    b = model.decode(changed, memory=memory).hidden
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_source_padding_does_not_change_encoding():
    model = tiny().eval()
    src = torch.randint(4, V, (1, 5))
    padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], 1)
    tgt = torch.randint(4, V, (1, 4))
    a = model(src, tgt)
    b = model(padded, tgt)
    torch.testing.assert_close(a, b)


def test_embedding_lookup_is_one_hot_times_matrix():
    model = tiny()
    ids = torch.tensor([[3, 17, 42, 0]])
    one_hot = F.one_hot(ids, V).double()  # (1, 4, V)
    torch.testing.assert_close(one_hot @ model.src_embed.weight, model.src_embed(ids))


def test_tied_embeddings_share_one_matrix():
    model = tiny()
    assert model.src_embed.weight is model.tgt_embed.weight
    h = torch.randn(3, D, dtype=torch.float64)
    torch.testing.assert_close(model.logits(h), h @ model.src_embed.weight.T)
    untied = tiny(tie_embeddings=False)
    assert untied.src_embed.weight is not untied.tgt_embed.weight


def test_embedding_scaled_by_sqrt_d():
    model = tiny()
    ids = torch.tensor([[5, 6]])
    x = model._embed(model.src_embed, ids)
    torch.testing.assert_close(x, model.src_embed(ids) * math.sqrt(D) + sinusoidal_table(2, D).double())


def test_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = Seq2SeqTransformer(ModelConfig(vocab_size=V, d_model=D, n_heads=H, d_ff=FF, n_encoder_layers=1,
                                           n_decoder_layers=1, dropout=0.0))
    src = torch.randint(4, V, (4, 6))
    tgt = torch.cat([torch.ones(4, 1, dtype=torch.long), torch.randint(4, V, (4, 6))], 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        logits = model(src, tgt[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), tgt[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05


def _repeat_rows(memory, k: int):
    """Memory with each sentence's row repeated k times (what beams would see without sharing)."""
    return type(memory)(memory.states.repeat_interleave(k, 0), memory.src_mask.repeat_interleave(k, 0))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("beams", [1, 3])
def test_cached_steps_equal_full_recomputation(norm_first, beams):
    """One position at a time through the KV cache, by the inference path (`decode_step`) and by the layers'
    readable path (`decode` with a state), equals decoding the whole prefix at once; beams share their
    sentence's memory."""
    model = tiny(norm_first=norm_first).eval()
    src = torch.randint(4, V, (2, 6))
    src[1, 4:] = 0  # padding in one sentence
    tgt = torch.randint(4, V, (2 * beams, 5))
    tgt[:, 0] = 1
    with torch.inference_mode():
        memory = model.encode(src)
        full = model.logits(model.decode(tgt, memory=_repeat_rows(memory, beams)).hidden)  # (2K,5,V)
        readable, fast = model.start_decoding(memory), model.start_decoding(memory)
        if beams > 1:
            readable.expand_beams(beams)
            fast.expand_beams(beams)
        for t in range(5):
            step = tgt[:, t : t + 1]
            torch.testing.assert_close(model.logits(model.decode(step, state=readable).hidden[:, -1]), full[:, t])
            torch.testing.assert_close(model.decode_step(step, fast), full[:, t])


def test_decode_step_is_for_inference_only():
    model = tiny()
    state = model.start_decoding(model.encode(torch.randint(4, V, (1, 3))))
    with pytest.raises(ValueError, match="decode_step is for inference"):
        model.decode_step(torch.ones(1, 1, dtype=torch.long), state)


def test_beam_rows_reorder_and_drop_sentences():
    """DecoderState.select with beams: rows reorder inside each sentence; a dropped sentence takes its memory."""
    model = tiny().eval()
    src = torch.randint(4, V, (3, 4))
    tgt = torch.randint(4, V, (6, 3))
    with torch.inference_mode():
        state = model.start_decoding(model.encode(src))
        state.expand_beams(2)
        model.decode(tgt[:, :1], state=state)
        keep = torch.tensor([1, 1, 4, 5])  # sentence 0 (both beams from its row 1) and sentence 2
        state.select(keep)
        assert state.src_mask.size(0) == 2 and state.caches[0].k.size(0) == 4
        out = model.decode(tgt[keep, 1:2], state=state).hidden
        ref = model.start_decoding(model.encode(src[[0, 2]]))
        ref.expand_beams(2)
        model.decode(tgt[keep, :1], state=ref)
        torch.testing.assert_close(out, model.decode(tgt[keep, 1:2], state=ref).hidden)
    with pytest.raises(ValueError, match="not a multiple of 2 beams"):
        state.select(torch.tensor([0, 1, 2]))


def test_inference_weight_copies_follow_updates():
    """decode_step multiplies by transposed copies of the weights; an in-place update (an optimizer step) renews them."""
    model = tiny().eval()
    src = torch.randint(4, V, (2, 4))
    first = torch.ones(2, 1, dtype=torch.long)

    def both():
        with torch.inference_mode():
            memory = model.encode(src)
            reference = model.logits(model.decode(first, memory=memory).hidden[:, -1])
            return model.decode_step(first, model.start_decoding(memory)), reference

    fast, reference = both()
    torch.testing.assert_close(fast, reference)
    with torch.no_grad():
        model.tgt_embed.weight.mul_(2.0)
        model.decoder[0].ffn.linear1.weight.add_(0.1)
    changed, reference = both()
    torch.testing.assert_close(changed, reference)
    assert not torch.allclose(changed, fast)


def test_inference_weight_copies_follow_a_fused_optimizer_step():
    """torch's fused Adam updates weights without bumping their version counters: the copies must still be
    renewed, because the trainer switches the model to training mode and back around every update."""
    from attnlab.train import make_optimizer

    model = tiny()
    opt = make_optimizer(model, 0.0)
    src = torch.randint(4, V, (2, 4))
    first = torch.ones(2, 1, dtype=torch.long)

    def both():
        model.eval()
        with torch.inference_mode():
            memory = model.encode(src)
            reference = model.logits(model.decode(first, memory=memory).hidden[:, -1])
            return model.decode_step(first, model.start_decoding(memory)), reference

    before, _ = both()
    model.train()
    model(src, first).square().mean().backward()
    for group in opt.param_groups:
        group["lr"] = 0.1
    opt.step()
    after, reference = both()
    torch.testing.assert_close(after, reference)
    assert not torch.allclose(after, before)
