"""What several commands share: the one line of JSON a command prints on success, and the flags that
name a model and the engine that reads it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from attnlab.config import DIRECTIONS
from attnlab.translate import DIRECTION_HELP, ENGINE_HELP, ENGINES


def print_json(**values) -> int:
    """One line of JSON on stdout (what a command reports on success); the exit status 0."""
    print(json.dumps(values, ensure_ascii=False))
    return 0


def add_model_flags(p: argparse.ArgumentParser, model_help: str = "run directory of a trained model") -> None:
    """--model, --engine (what reads it) and --direction (of a model trained in both)."""
    p.add_argument("--model", type=Path, required=True, help=model_help)
    p.add_argument("--engine", choices=ENGINES, default="attnlab", help=ENGINE_HELP)
    p.add_argument("--direction", choices=DIRECTIONS, default=None, help=DIRECTION_HELP)
