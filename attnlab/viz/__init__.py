"""Pictures of the model's insides, drawn from real models with matplotlib (Agg, no display needed).

One module per picture kind, each with a `plot_*` function that writes a PNG or SVG (by the output
suffix) and returns the data it drew, as a small dataclass, so tests can check the picture's numbers:

    fonts.py       find and select a CJK font so Chinese renders as Chinese, not boxes
    figure.py      make figures and save them (PNG/SVG by suffix, fixed pixel size)
    attention.py   attention heatmaps: one head, or all heads of a layer plus their average
    positions.py   the sinusoidal positional encoding, a few of its waves, and position similarity
    scaling.py     why scores are divided by √d: q·k variance and softmax entropy with and without it
    embeddings.py  a labelled 2-D map (PCA or t-SNE) of word vectors or a model's embedding matrix
    training.py    loss, perplexity, dev BLEU and learning rate against steps, from metrics.jsonl
    report.py      runs/NAME/report.html: one self-contained page about a trained run

The `attnlab viz ...` commands are `attnlab.cli.viz`.
"""
