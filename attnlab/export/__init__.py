"""Export a trained run to other inference engines: CTranslate2 (whole model) and ONNX (encoder + one decoder step).

    ctranslate2.py     the model as a CTranslate2 TransformerSpec, saved through ctranslate2's Converter
    onnx.py            the encoder and decoder-step graphs (the decoder step is `attnlab.nn.step`'s)
The `attnlab export` command is `attnlab.cli.export`; the engines that translate with the exported folders
are in `attnlab.translate` (`--engine ctranslate2 / onnx`).

The engines are optional dependencies (ctranslate2, onnx, onnxruntime): `attnlab` imports these modules
only when an export or an engine is asked for, and a missing package is named in a one-line error.
"""

from __future__ import annotations

from pathlib import Path

from attnlab.config import Config
from attnlab.errors import AttnlabError

CONFIG_COPY = "attnlab.toml"  # the run's config.toml, inside every export folder
# CTranslate2's weight types (its specs.model_spec.ACCEPTED_MODEL_TYPES), listed here so that --help needs no ctranslate2
QUANTIZATIONS = ("int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32")


def is_export(folder: Path, model_file: str) -> bool:
    """Whether `folder` holds an export: the engine's `model_file` and the run's config."""
    return (folder / model_file).is_file() and (folder / CONFIG_COPY).is_file()


def check_out_dir(run_dir: Path, out_dir: Path, force: bool, model_file: str, engine: str) -> None:
    """out_dir may be written: it does not exist, or `force` is given and it holds an earlier export (or nothing)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AttnlabError(f"--out {out_dir} is a file, not a folder")
    if out_dir.exists() and not force:
        raise AttnlabError(f"{out_dir} already exists; pass --force to replace an earlier export")
    if out_dir.exists() and (out_dir.resolve() == run_dir.resolve() or not (
            is_export(out_dir, model_file) or not any(out_dir.iterdir()))):
        raise AttnlabError(f"--force replaces only an earlier {engine} export, and {out_dir} is not one")


def positions_needed(cfg: Config) -> int:
    """Rows of positional encoding an exported model must hold: fixed-size tables cannot grow as attnlab's does.

    The longest source is decode.max_input_tokens; the longest output its `output_limit`, plus its <bos>.
    """
    from attnlab.decoding import output_limit

    d = cfg.decode
    return max(cfg.model.max_positions, d.max_input_tokens, output_limit(d.max_input_tokens, d) + 1)


def check_learned_positions(cfg: Config, engine: str) -> None:
    """A learned position table cannot grow: it must reach the longest input and output an export allows."""
    needed = positions_needed(cfg)
    if cfg.model.positions == "learned" and needed > cfg.model.max_positions:
        raise AttnlabError(f"the model's learned positions stop at {cfg.model.max_positions} (model.max_positions), "
                           f"but {engine} decoding may need {needed}: lower decode.max_input_tokens")


def check_one_direction(cfg: Config, engine: str) -> None:
    """Exports start the decoder from <bos>; a model of both directions starts it from a language tag."""
    if cfg.bidirectional:
        raise AttnlabError(f"the {engine} export starts the decoder from <bos>; a model of both directions "
                           "(bidirectional = true) starts it from a language tag and cannot be exported yet")


def check_additive(cfg: Config, engine: str) -> None:
    """Formats that know only the paper's attention (an added position table, q·k / √d_k) refuse other models."""
    m = cfg.model
    if m.positions not in ("add", "learned", "none"):
        raise AttnlabError(f"{engine} adds a position table to the embeddings and cannot express "
                           f"model.positions = {m.positions!r} (export to ONNX instead)")
    if m.attention_scale != "sqrt":
        raise AttnlabError(f"{engine} divides q·k by √d_k and cannot express model.attention_scale = "
                           f"{m.attention_scale!r} (export to ONNX instead)")
    check_learned_positions(cfg, engine)
