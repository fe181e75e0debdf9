"""Export a trained run to other inference engines: CTranslate2 (whole model) and ONNX (encoder + one decoder step).

    ctranslate2.py     the model as a CTranslate2 TransformerSpec, saved through ctranslate2's Converter
    ct2_translator.py  text in, text out with the exported CTranslate2 model (`translate --engine ctranslate2`)
    onnx.py            encoder and decoder-step graphs, and a greedy search that runs them with onnxruntime
    cli.py             the `attnlab export` subcommand

The engines are optional dependencies (ctranslate2, onnx, onnxruntime): `attnlab` imports these modules
only when an export or an engine is asked for, and a missing package is named in a one-line error.
"""

from __future__ import annotations

import math

from attnlab.config import Config

CONFIG_COPY = "attnlab.toml"  # the run's config.toml, inside every export folder


def positions_needed(cfg: Config) -> int:
    """Rows of positional encoding an exported model must hold: fixed-size tables cannot grow as attnlab's does.

    The longest source is decode.max_input_tokens; the longest output floor(max_len_a · that + max_len_b),
    plus its <bos>.
    """
    d = cfg.decode
    return max(cfg.model.max_positions, d.max_input_tokens, math.floor(d.max_len_a * d.max_input_tokens + d.max_len_b) + 1)
