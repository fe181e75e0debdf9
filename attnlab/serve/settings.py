"""ServeSettings: what `attnlab serve` is configured with, as plain data (built by the CLI, passed in).

Limits keep one request from holding the decoder for long: texts per request, characters per text
and body bytes are capped, and so are the beam and the sentences waiting in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnlab.errors import AttnlabError


@dataclass
class ServeSettings:
    host: str = "127.0.0.1"  # address to listen on (loopback only by default)
    port: int = 8000  # TCP port
    max_texts: int = 64  # texts per request
    max_chars: int = 1000  # characters (code points) per text
    max_body_bytes: int = 512 * 1024  # request body size; larger bodies get 413
    max_beam: int = 8  # largest beam a request may ask for
    max_attention_texts: int = 8  # texts per request when attention maps are asked for
    max_output_tokens: int = 512  # largest max_decoding_length (and min_decoding_length) a request may ask for
    max_batch: int = 32  # sentences per decoder call; 1 turns batching off (one sentence at a time)
    batch_window_ms: float = 50.0  # the longest the first sentence of a batch waits for others to join
    # (it waits only while fewer sentences are in hand than were in flight in the previous round)
    max_queue: int = 4096  # sentences waiting for the decoder; beyond it requests get 503
    max_connections: int = 512  # open connections (slow clients included); beyond it new requests get 503
    graceful_timeout_s: float = 60.0  # on SIGTERM/SIGINT: how long requests in flight may take to finish

    def validate(self) -> None:
        """Raise AttnlabError naming (as its `field`) the first value out of range."""
        positive = ("max_texts", "max_chars", "max_body_bytes", "max_beam", "max_attention_texts", "max_output_tokens",
                    "max_batch", "max_queue", "max_connections")
        for name in positive:
            if getattr(self, name) < 1:
                raise AttnlabError(f"must be at least 1, got {getattr(self, name)}", field=name)
        if self.batch_window_ms < 0:
            raise AttnlabError(f"must be 0 or more, got {self.batch_window_ms}", field="batch_window_ms")
        if not 0 <= self.port <= 65535:
            raise AttnlabError(f"must be between 0 and 65535, got {self.port}", field="port")
        if self.max_texts > self.max_queue:
            raise AttnlabError(f"({self.max_texts}) must not exceed max_queue ({self.max_queue})", field="max_texts")
