"""`attnlab serve`: load a model (any engine) and serve it over HTTP with uvicorn (`attnlab.serve`).

FastAPI, uvicorn and torch are imported only when the command runs, so `attnlab --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket

from attnlab.cli.common import add_model_flags
from attnlab.errors import AttnlabError
from attnlab.serve.settings import ServeSettings

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
SETTINGS_HELP = {  # the ServeSettings fields that have a flag (--max-batch sets max_batch), {} their default
    "host": "address to listen on (default: {}, this machine only)",
    "port": "TCP port (default: {})",
    "max_batch": "sentences per decoder call; 1 turns batching off (default: {})",
    "batch_window_ms": "the longest a sentence waits for others to join its batch (default: {:g})",
    "max_texts": "texts per request (default: {})",
    "max_chars": "characters per text (default: {})",
    "max_body_bytes": "request body size (default: {})",
    "max_beam": "largest beam a request may ask for (default: {})",
    "max_output_tokens": "largest max_decoding_length a request may ask for (default: {})",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add `serve` to the subcommands of the `attnlab` parser."""
    p = sub.add_parser("serve", help="serve a model over HTTP: a JSON API and a page that shows the attention")
    add_model_flags(p, "run directory (an export folder with --engine)")
    for name, text in SETTINGS_HELP.items():
        default = getattr(ServeSettings, name)
        p.add_argument("--" + name.replace("_", "-"), type=type(default), default=default, help=text.format(default))
    p.add_argument("--threads", type=int, default=None, help="torch threads for decoding (default: torch's own)")
    p.set_defaults(func=cmd_serve)


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    settings = ServeSettings(**{name: getattr(args, name) for name in SETTINGS_HELP})
    settings.validate()  # its errors carry the field, which the CLI shows as the flag (max_batch: --max-batch)
    if args.threads is not None and args.threads < 1:
        raise AttnlabError(f"--threads must be at least 1, got {args.threads}")
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    try:
        import uvicorn

        from attnlab.serve.app import create_app
    except ImportError as e:
        raise AttnlabError(f"serve needs FastAPI and uvicorn ({e.name} is not installed)") from None
    import torch

    from attnlab.translate import load_engine

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    sock = listen(settings.host, settings.port)  # first: a taken port fails before the model loads
    try:
        translator = load_engine(args.engine, args.model, threads=args.threads or 0, direction=args.direction)
        app = create_app(translator, settings, run_dir=args.model)
        host, port = sock.getsockname()[:2]
        if settings.host not in LOOPBACK:
            log.warning("listening on %s: the API has no authentication; anyone who reaches it can use it", host)
        log.info("serving %s (%s) on http://%s:%d/", args.model, translator.cfg.direction, host, port)
        level = "warning" if getattr(args, "quiet", False) else "info"
        server = uvicorn.Server(uvicorn.Config(app, log_level=level, limit_concurrency=settings.max_connections,
                                               timeout_graceful_shutdown=settings.graceful_timeout_s))
        # SIGTERM: uvicorn stops accepting, lets requests in flight finish, then raises the signal again;
        # this handler (in place before uvicorn's and after) turns that into a clean exit with status 0
        previous = signal.signal(signal.SIGTERM, lambda *_: setattr(server, "should_exit", True))
        try:
            server.run(sockets=[sock])
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        sock.close()
    log.info("stopped; requests in flight were answered")
    return 0


def listen(host: str, port: int) -> socket.socket:
    """A bound socket for uvicorn, so that a taken port is one clear error rather than a log line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise AttnlabError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.set_inheritable(True)
    return sock
