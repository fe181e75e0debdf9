"""Small file helpers: atomic writes (temp file + fsync + rename), sha256 checksums, and reading a
UTF-8 text file with an error that names it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from attnlab.errors import AttnlabError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write data to path so that a reader sees the old file or the new one, never a half-written one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_utf8(path: Path, what: str = "") -> str:
    """The file's text (a leading BOM dropped); AttnlabError naming the file if it cannot be read or
    is not UTF-8. `what` ("dictionary", ...) goes into the message."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise AttnlabError(f"cannot read {what + ' ' if what else ''}{path}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise AttnlabError(f"{path} is not valid UTF-8 (line {line}, byte {e.start})") from None
