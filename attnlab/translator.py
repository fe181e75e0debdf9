"""Where `Translator` used to live: it is attnlab's PyTorch engine in `attnlab.translate.pytorch` now."""

from attnlab.translate.pytorch import AttentionMaps, Translator  # noqa: F401
