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
from pathlib import Path
from typing import TYPE_CHECKING

from attnlab.config import Config, load_config
from attnlab.errors import AttnlabError

if TYPE_CHECKING:  # imported when used: `attnlab --help` stays light
    from attnlab.tokenizer import Tokenizer

CONFIG_COPY = "attnlab.toml"  # the run's config.toml, inside every export folder


def load_export(export_dir: str | Path, model_file: str, engine: str, command: str) -> tuple[Config, Tokenizer]:
    """The run's config and tokenizer inside an export folder; `model_file` marks the engine's own model."""
    export_dir = Path(export_dir)
    if not ((export_dir / model_file).is_file() and (export_dir / CONFIG_COPY).is_file()):
        raise AttnlabError(f"{export_dir} is not {engine} export of an attnlab model (run `attnlab export {command}` first)")
    from attnlab.tokenizer import Tokenizer

    return load_config(export_dir / CONFIG_COPY), Tokenizer.load(export_dir)


def positions_needed(cfg: Config) -> int:
    """Rows of positional encoding an exported model must hold: fixed-size tables cannot grow as attnlab's does.

    The longest source is decode.max_input_tokens; the longest output floor(max_len_a · that + max_len_b),
    plus its <bos>.
    """
    d = cfg.decode
    return max(cfg.model.max_positions, d.max_input_tokens, math.floor(d.max_len_a * d.max_input_tokens + d.max_len_b) + 1)
