"""Export a trained run to CTranslate2: the same weights in a `ctranslate2.specs.TransformerSpec`.

The spec is filled from the model's own modules and saved through CTranslate2's `Converter` base class
(`validate`, optional weight quantization, `save`), the path CTranslate2's converters for fairseq and
OpenNMT-py take. The sentencepiece model(s) and the run's config are registered as extra files, so the
exported folder translates text on its own (`attnlab.translate.ctranslate2`).

How attnlab's parts map onto the spec (CTranslate2 4.x, `specs/transformer_spec.py`):
    embeddings ×√D                       scale_embeddings = True (the spec's default)
    sinusoidal positions (interleaved)   position_encodings.encodings = attnlab's own table (T, D): without it
                                         CTranslate2 would build its own table, with sin and cos concatenated;
                                         a learned table likewise, zeros for none; other model.positions, and
                                         an attention_scale other than √d_k, are refused (`check_additive`)
    post-norm / pre-norm                 pre_norm = cfg.norm_first; the stack-final LayerNorm only for pre-norm
    self-attention in_proj (3D, D)       linear[0], already fused q, k, v as CTranslate2 expects
    cross-attention q_proj / kv_proj     linear[0] (q) and linear[1] (k then v, fused)
    out_proj                             linear[-1]
    residual LayerNorm of each sublayer  self_attention / attention / ffn .layer_norm (eps 1e-5, PyTorch's default)
    tied output layer, no bias           decoder.projection = the target embedding (stored once: aliased)
Special tokens: <bos> starts the decoder, <eos> ends it, <unk>; the source gets neither <bos> nor <eos>.
The attention CTranslate2 returns (for word alignments) is the mean of the last decoder layer's heads.

References: CTranslate2 documentation, "Model conversion" and "Add a new converter" sections;
Vaswani et al. (2017) for the architecture.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from attnlab import checkpoint
from attnlab.errors import AttnlabError
from attnlab.export import CONFIG_COPY, QUANTIZATIONS, check_additive, check_one_direction, check_out_dir, positions_needed
from attnlab.model import Seq2SeqTransformer
from attnlab.tokenizer import BOS, EOS, SPECIALS, UNK, Tokenizer

try:
    from ctranslate2.converters import Converter
    from ctranslate2.specs import common_spec, transformer_spec
except ImportError:  # the CLI turns this into one line naming the package to install
    raise AttnlabError("exporting to CTranslate2 needs the ctranslate2 package: pip install ctranslate2") from None

log = logging.getLogger(__name__)

MODEL_FILE = "model.bin"  # what CTranslate2 writes
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, which attnlab uses


def vocabulary(tokenizer: Tokenizer, side: str, size: int) -> list[str]:
    """The pieces of one side's sentencepiece model by id, padded with unused names to the embedding size."""
    sp = tokenizer.src if side == "src" else tokenizer.tgt
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    if len(pieces) > size:
        raise AttnlabError(f"the {side} tokenizer has {len(pieces)} pieces but the model only {size} embeddings")
    return pieces + [f"<attnlab-unused-{i}>" for i in range(len(pieces), size)]


def _linear(spec: common_spec.LinearSpec, layer: torch.nn.Linear) -> None:
    spec.weight = layer.weight.detach().float()  # (out, in), PyTorch's layout, which CTranslate2 shares
    if layer.bias is not None:
        spec.bias = layer.bias.detach().float()


def _norm(spec: common_spec.LayerNormSpec, norm: torch.nn.LayerNorm) -> None:
    spec.gamma = norm.weight.detach().float()
    spec.beta = norm.bias.detach().float()


def _ffn(spec: transformer_spec.FeedForwardSpec, layer: torch.nn.Module, norm: torch.nn.LayerNorm) -> None:
    _linear(spec.linear_0, layer.ffn.linear1)
    _linear(spec.linear_1, layer.ffn.linear2)
    _norm(spec.layer_norm, norm)


def _encoder(spec: transformer_spec.TransformerEncoderSpec, model: Seq2SeqTransformer, positions: torch.Tensor) -> None:
    spec.embeddings[0].weight = model.src_embed.weight.detach().float()
    spec.position_encodings.encodings = positions
    for layer_spec, layer in zip(spec.layer, model.encoder):
        attn = layer_spec.self_attention
        _linear(attn.linear[0], layer.self_attn.in_proj)  # (3D, D): q, k, v
        _linear(attn.linear[1], layer.self_attn.out_proj)
        _norm(attn.layer_norm, layer.res_attn.norm)
        _ffn(layer_spec.ffn, layer, layer.res_ffn.norm)
    if model.cfg.norm_first:
        _norm(spec.layer_norm, model.encoder_norm)


def _decoder(spec: transformer_spec.TransformerDecoderSpec, model: Seq2SeqTransformer, positions: torch.Tensor) -> None:
    spec.embeddings.weight = model.tgt_embed.weight.detach().float()
    spec.position_encodings.encodings = positions
    for layer_spec, layer in zip(spec.layer, model.decoder):
        self_attn, cross = layer_spec.self_attention, layer_spec.attention
        _linear(self_attn.linear[0], layer.self_attn.in_proj)  # (3D, D): q, k, v
        _linear(self_attn.linear[1], layer.self_attn.out_proj)
        _norm(self_attn.layer_norm, layer.res_self.norm)
        _linear(cross.linear[0], layer.cross_attn.q_proj)  # (D, D)
        _linear(cross.linear[1], layer.cross_attn.kv_proj)  # (2D, D): k, then v
        _linear(cross.linear[2], layer.cross_attn.out_proj)
        _norm(cross.layer_norm, layer.res_cross.norm)
        _ffn(layer_spec.ffn, layer, layer.res_ffn.norm)
    if model.cfg.norm_first:
        _norm(spec.layer_norm, model.decoder_norm)
    spec.projection.weight = model.output_weight().detach().float()  # (V, D), no bias


def transformer_spec_of(model: Seq2SeqTransformer, src_vocab: list[str], tgt_vocab: list[str],
                        positions: int) -> transformer_spec.TransformerSpec:
    """A TransformerSpec holding the model's weights, `positions` rows of positional encoding and the vocabularies."""
    cfg = model.cfg
    spec = transformer_spec.TransformerSpec.from_config(
        (cfg.n_encoder_layers, cfg.n_decoder_layers), cfg.n_heads, pre_norm=cfg.norm_first,
        activation=common_spec.Activation.RELU,
        alignment_layer=-1, alignment_heads=cfg.n_heads,  # return_attention: the mean of the last layer's heads
    )
    table = model.positions.additive_table(positions)  # (T, D): interleaved sin/cos, learned rows, or zeros
    _encoder(spec.encoder, model, table)
    _decoder(spec.decoder, model, table)
    spec.config.unk_token, spec.config.bos_token, spec.config.eos_token = SPECIALS[UNK], SPECIALS[BOS], SPECIALS[EOS]
    spec.config.decoder_start_token = SPECIALS[BOS]
    spec.config.add_source_bos = spec.config.add_source_eos = False
    spec.config.layer_norm_epsilon = LAYER_NORM_EPS
    spec.register_source_vocabulary(src_vocab)
    spec.register_target_vocabulary(tgt_vocab)
    return spec


class AttnlabConverter(Converter):
    """CTranslate2's converter interface over an attnlab run directory (config, tokenizer, best weights)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)

    def _load(self) -> transformer_spec.TransformerSpec:
        run = checkpoint.load_run(self.run_dir)
        v = run.cfg.model.vocab_size
        spec = transformer_spec_of(run.model, vocabulary(run.tokenizer, "src", v), vocabulary(run.tokenizer, "tgt", v),
                                   positions_needed(run.cfg))
        for path in sorted((self.run_dir / checkpoint.TOKENIZER_DIR).glob("*.model")):
            spec.register_file(str(path))  # joint.model (or src.model + tgt.model) beside model.bin
        spec.register_file(str(self.run_dir / checkpoint.CONFIG_FILE), CONFIG_COPY)
        return spec


def export_ctranslate2(run_dir: str | Path, out_dir: str | Path, quantization: str | None = None,
                       force: bool = False) -> Path:
    """Write the run's model as a CTranslate2 model folder (model.bin, config.json, vocabulary, tokenizer, config).

    quantization: one of QUANTIZATIONS (None keeps float32). `force` replaces an earlier export in out_dir,
    never any other folder.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise AttnlabError(f"unknown quantization {quantization!r} (known: {', '.join(QUANTIZATIONS)})")
    check_out_dir(run_dir, out_dir, force, MODEL_FILE, "CTranslate2")
    cfg = checkpoint.load_run_config(run_dir)
    check_one_direction(cfg, "CTranslate2")
    check_additive(cfg, "CTranslate2")
    try:
        AttnlabConverter(run_dir).convert(str(out_dir), quantization=quantization, force=force)
    except (ValueError, RuntimeError, OSError) as e:
        raise AttnlabError(f"CTranslate2 export of {run_dir} failed: {e}") from None
    log.info("wrote a CTranslate2 model (%s) to %s", quantization or "float32", out_dir)
    return out_dir
