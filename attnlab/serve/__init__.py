"""Serving translations: an HTTP API (FastAPI) and a web page that shows the cross-attention live.

    settings.py  ServeSettings: address, request limits, batching
    batcher.py   gathers concurrent requests into batches for the decoder (asyncio queue + one worker)
    app.py       create_app(translator, settings): the JSON API, its errors, and the page
    static/      index.html, app.js, style.css: the page, served as files (no build step, no CDN)

The `attnlab serve` command that starts it is `attnlab.cli.serve`. Importing this package imports neither
FastAPI nor torch; `app` and `batcher` do.
"""
