"""Text in, text out on any engine: the text pipeline in `base.py`, the engines beside it (`pytorch.py`,
`ctranslate2.py`, `onnx.py`), and `load_engine`, which opens one by name for `--engine` (importing the
CTranslate2 and ONNX packages only then).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the package stays light: `attnlab --help` reads ENGINES without torch
    from attnlab.translate.base import TranslatorBase

ENGINES = ("attnlab", "ctranslate2", "onnx")
ENGINE_HELP = ("attnlab: the PyTorch model of a run directory; ctranslate2 / onnx: a folder written by "
               "`attnlab export ctranslate2` / `attnlab export onnx` (default: attnlab)")


DIRECTION_HELP = "zh-en or en-zh: the direction a model trained in both translates (default: its config's)"


def load_engine(engine: str, path: str | Path, threads: int = 0, direction: str | None = None) -> TranslatorBase:
    """An engine by name (one of ENGINES) on the model at `path`; threads: the engine's own (0: its default);
    direction: the one to translate (a model of both directions; any other must already translate it)."""
    from attnlab.checkpoint import choose_direction

    if engine == "ctranslate2":
        from attnlab.translate.ctranslate2 import CT2Translator

        translator = CT2Translator.load(path, threads=threads)
    elif engine == "onnx":
        from attnlab.translate.onnx import OnnxTranslator

        translator = OnnxTranslator.load(path, threads=threads)
    else:
        from attnlab.translate.pytorch import Translator

        return Translator.load(path, direction)
    choose_direction(translator.cfg, direction, str(path))  # an export translates its run's one direction
    return translator
