"""What several commands share: the one line of JSON a command prints on success."""

from __future__ import annotations

import json


def print_json(**values) -> int:
    """One line of JSON on stdout (what a command reports on success); the exit status 0."""
    print(json.dumps(values, ensure_ascii=False))
    return 0
