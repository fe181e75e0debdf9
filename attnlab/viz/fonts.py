"""Finding and selecting a CJK font, so that Chinese renders as Chinese and not as boxes: the one place
every picture (attention grids, embeddings, the bilingual map, report.html) gets its font from.

matplotlib's default font (DejaVu Sans) has no CJK glyphs. `use_cjk_font()` registers a font that has
them with `matplotlib.font_manager` and returns the family list to draw with: DejaVu Sans first (Latin,
arrows, ▁) and the CJK font as the fallback for what DejaVu lacks. The font is looked for in this order:

1. `$ATTNLAB_CJK_FONT`, a .ttf/.ttc/.otf file of your choice;
2. Noto Sans SC (SIL Open Font License 1.1) from the `pylopdf-fonts-zh-cn` wheel, a dependency of
   attnlab, so a fresh `pip install` draws Chinese with no system font. It comes before the system's
   fonts so that the same run gives the same picture on every machine;
3. a font the system has (matplotlib's font list, then the install paths of Debian `fonts-wqy-zenhei`
   and `fonts-noto-cjk`, Fedora and macOS), for an install without that wheel.

None of them at all is an error that says what to install.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from pathlib import Path

from matplotlib import font_manager

from attnlab.errors import AttnlabError

log = logging.getLogger(__name__)

ENV_VAR = "ATTNLAB_CJK_FONT"
PACKAGE = "pylopdf-fonts-zh-cn"  # the wheel (declared in pyproject.toml) that carries Noto Sans SC
# family names of system fonts with Simplified Chinese glyphs, best first
CJK_FAMILIES = ("WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC",
                "Source Han Sans CN", "Noto Serif CJK SC", "WenQuanYi Micro Hei", "AR PL UMing CN", "SimHei",
                "Microsoft YaHei", "PingFang SC", "Heiti SC")
# where Debian/Ubuntu, Fedora and macOS put them
KNOWN_PATHS = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
               "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
               "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
               "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
               "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
               "/System/Library/Fonts/PingFang.ttc")
LATIN_FAMILY = "DejaVu Sans"  # ships with matplotlib


def packaged_font() -> Path | None:
    """Noto Sans SC from the `pylopdf-fonts-zh-cn` wheel, or None when that wheel is not installed."""
    try:
        import pylopdf_fonts_zh_cn
    except ImportError:
        return None
    path = Path(pylopdf_fonts_zh_cn.sans_path())
    return path if path.is_file() else None


def _register(path: Path) -> str:
    """Add a font file to matplotlib's font manager; return its family name."""
    try:
        font_manager.fontManager.addfont(str(path))
        return font_manager.FontProperties(fname=str(path)).get_name()
    except (OSError, RuntimeError, ValueError) as e:
        raise AttnlabError(f"{path}: not a usable font file ({e})") from None


def _as_regular(family: str) -> str:
    """Make `family` answer a normal-weight (400) lookup without a warning.

    Some CJK fonts (WenQuanYi Zen Hei) declare only weight 500, and matplotlib then logs "Failed to find
    font weight normal" for every new text size; the same file is registered once more as weight 400."""
    entries = [f for f in font_manager.fontManager.ttflist if f.name == family]
    if entries and not any(f.weight == 400 for f in entries):
        font_manager.fontManager.ttflist.append(dataclasses.replace(entries[0], weight=400))
        font_manager.fontManager._findfont_cached.cache_clear()
    return family


@functools.cache
def cjk_family() -> str:
    """The family name of a CJK font registered with matplotlib (found once per process)."""
    return _as_regular(_find_family())


def _find_family() -> str:
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        if not Path(chosen).is_file():
            raise AttnlabError(f"${ENV_VAR}={chosen}: no such font file")
        return _register(Path(chosen))
    packaged = packaged_font()
    if packaged is not None:
        return _register(packaged)
    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return family
    for path in map(Path, KNOWN_PATHS):
        if path.is_file():
            return _register(path)
    raise AttnlabError(f"no CJK font found for Chinese labels (the {PACKAGE} package is not installed, and no "
                       f"system font such as {', '.join(CJK_FAMILIES[:2])}); `pip install {PACKAGE}`, or "
                       f"`apt-get install fonts-wqy-zenhei`, or set ${ENV_VAR} to a .ttf/.ttc/.otf file")


def use_cjk_font() -> list[str]:
    """The font family list for text that may hold Chinese: DejaVu Sans, then the CJK font as fallback."""
    family = cjk_family()
    log.debug("CJK font: %s", family)
    return [LATIN_FAMILY, family]
