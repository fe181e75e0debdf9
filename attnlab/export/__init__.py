"""Export a trained run to other inference engines: CTranslate2 (whole model) and ONNX (encoder + one decoder step).

    ctranslate2.py     the model as a CTranslate2 TransformerSpec, saved through ctranslate2's Converter
    ct2_translator.py  text in, text out with the exported CTranslate2 model (`translate --engine ctranslate2`)
    onnx.py            encoder and decoder-step graphs, and a greedy search that runs them with onnxruntime
    cli.py             the `attnlab export` subcommand

The engines are optional dependencies: each module imports its engine only when it is used, and says
which package to install when it is missing.
"""
