"""Studies that answer the tour's questions with measurements on real models, each run end to end by
`attnlab experiment NAME` and written as a results table (results.json + results.md) with its pictures:

    positions.py    add, multiply, multiply1p, rotate, learned, none: trained under one budget; curves,
                    test BLEU, and sentences whose word order the position-free model scrambles
    scaling.py      q·k divided by √d_k, by 1 and by d_k: trained under one budget; curves, and per layer
                    and head the variance of q·k, the softmax entropy and the saturated rows
    context.py      a word's static embedding against the encoder's vector of it at every layer, in two or
                    more sentences: cosines, nearest pieces, the attention rows that moved it
    coordinates.py  a matrix as a change of coordinates (a 2-D grid, parallels and ratios kept) against a
                    quadratic map; then one-hot × embedding and the Q/K/V projections of the real model
    order.py        the encoder without positions is permutation-equivariant; with them it is not

    budget.py       training the variants of a config under one budget (the trainer of `attnlab.train`)
    results.py      the results table as JSON and markdown: the one place a study writes its numbers
"""
