"""attnlab: the Transformer of "Attention Is All You Need" (Vaswani et al., 2017), built from its parts."""

__version__ = "0.1.0"
