"""The HTTP service under faults: clients that disconnect mid-request, slow clients, bursts above the
batch cap and above the queue: the server keeps answering the others. `attnlab serve` as a real process:
a client trickling its body or vanishing does not hold up the rest, SIGTERM lets the requests in flight
finish and exits 0, and (slow) resident memory stays flat over thousands of requests."""

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from attnlab.serve.app import create_app
from attnlab.serve.settings import ServeSettings
from attnlab.translate.pytorch import Translator
from test_serve import open_client, train_tiny

LONG = "一二三四五六七八九零" * 30  # 300 characters: about 256 subwords after truncation
# `attnlab serve` with every decoder call SLOW_DECODE_S seconds slower, so that requests are surely in flight
SLOW_SERVE = """
import os, sys, time
from attnlab.cli import main
from attnlab.translate.pytorch import Translator

real, pause = Translator.translate, float(os.environ.get("SLOW_DECODE_S", "0"))
Translator.translate = lambda self, lines, beam=None: (time.sleep(pause), real(self, lines, beam))[1]
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def translator(run_dir) -> Translator:
    return Translator.load(run_dir)


class Slow:
    """The real translator, `seconds` slower per decoder call: time for faults to land mid-request."""

    def __init__(self, translator: Translator, seconds: float) -> None:
        self.t, self.seconds, self.cfg, self.model = translator, seconds, translator.cfg, translator.model

    def translate(self, lines, beam=None):
        time.sleep(self.seconds)
        return self.t.translate(lines, beam)

    def attention(self, line, beam=None):
        return self.t.attention(line, beam)


def texts(i: int, n: int = 1) -> list[str]:
    digits = "零一二三四五六七八九"
    return [digits[(i + k) % 10] + digits[(3 * i + k) % 10] for k in range(n)]


# -- in process, through ASGI ------------------------------------------------------------------------------

def test_clients_that_disconnect_mid_request_do_not_disturb_the_others(translator, run_dir):
    async def go():
        app = create_app(Slow(translator, 0.05), ServeSettings(max_batch=4, batch_window_ms=5), run_dir=run_dir)
        client, lifespan = await open_client(app)
        try:
            tasks = [asyncio.create_task(client.post("/v1/translate", json={"texts": texts(i, 3), "beam": 1}))
                     for i in range(16)]
            await asyncio.sleep(0.03)  # the first batch is decoding, the rest wait in the queue
            for task in tasks[1::2]:
                task.cancel()  # the client goes away: its request is cancelled in the server too
            done = await asyncio.gather(*tasks, return_exceptions=True)
            after = await client.post("/v1/translate", json={"texts": ["九九"], "beam": 1})
            health = (await client.get("/v1/health")).json()
            return done, after, health
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)

    done, after, health = asyncio.run(go())
    for i, r in enumerate(done):
        if i % 2:
            assert isinstance(r, asyncio.CancelledError) or r.status_code == 200
        else:
            assert r.status_code == 200 and r.json()["translations"] == translator.translate(texts(i, 3), beam=1)
    assert after.status_code == 200 and after.json()["translations"] == translator.translate(["九九"], beam=1)
    assert health["waiting"] == 0
    assert health["sentences"] < 16 * 3 + 1  # sentences of cancelled requests still queued were dropped, not decoded


def test_a_burst_above_the_batch_cap_is_answered_in_capped_batches(translator, run_dir):
    async def go():
        app = create_app(translator, ServeSettings(max_batch=4, batch_window_ms=5), run_dir=run_dir)
        client, lifespan = await open_client(app)
        try:
            replies = await asyncio.gather(*(client.post("/v1/translate", json={"texts": texts(i, 2), "beam": 1})
                                             for i in range(40)))
            return replies, (await client.get("/v1/health")).json()
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)

    replies, health = asyncio.run(go())
    for i, r in enumerate(replies):
        assert r.status_code == 200 and r.json()["translations"] == translator.translate(texts(i, 2), beam=1)
    assert health["sentences"] == 80 and health["largest_batch"] == 4 and health["batches"] >= 20


def test_a_burst_above_the_queue_gets_503_and_the_server_goes_on(translator, run_dir):
    async def go():
        settings = ServeSettings(max_batch=2, batch_window_ms=0, max_queue=10, max_texts=5)
        app = create_app(Slow(translator, 0.1), settings, run_dir=run_dir)
        client, lifespan = await open_client(app)
        try:
            replies = await asyncio.gather(*(client.post("/v1/translate", json={"texts": texts(i, 5), "beam": 1})
                                             for i in range(12)))
            after = await client.post("/v1/translate", json={"texts": texts(99, 5), "beam": 1})
            return replies, after
        finally:
            await client.aclose()
            await lifespan.__aexit__(None, None, None)

    replies, after = asyncio.run(go())
    codes = [r.status_code for r in replies]
    assert set(codes) == {200, 503}, codes
    for i, r in enumerate(replies):
        if r.status_code == 503:
            assert "server busy" in r.json()["error"] and "retry later" in r.json()["error"]
        else:
            assert r.json()["translations"] == translator.translate(texts(i, 5), beam=1)
    assert after.status_code == 200


# -- `attnlab serve` as a process ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`attnlab serve` on a free port, its log in a file (a pipe nobody reads would fill and stall it)."""

    def __init__(self, run_dir: Path, log: Path, *flags: str, slow_decode_s: float = 0.0) -> None:
        self.port, self.log = free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, OMP_NUM_THREADS="1", SLOW_DECODE_S=str(slow_decode_s))
        script = log.with_name("slow_serve.py")
        script.write_text(SLOW_SERVE, encoding="utf-8")
        with open(log, "wb") as f:
            self.proc = subprocess.Popen([sys.executable, str(script), "serve", "--model", str(run_dir),
                                          "--port", str(self.port), "--threads", "1", *flags],
                                         stdout=f, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{self.url}/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not start: {log.read_text()}")

    def translate(self, texts: list[str], beam: int = 1, timeout: float = 60) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/translate", json={"texts": texts, "beam": beam}, timeout=timeout)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def server(run_dir, tmp_path):
    s = Server(run_dir, tmp_path / "serve.log", "--max-batch", "4")
    yield s
    s.stop()


def raw_request(port: int, body: bytes, send_bytes: int) -> socket.socket:
    """A connection that sends the headers and the first send_bytes of the body, and no more (yet)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock.sendall(head + body[:send_bytes])
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict]:
    """(status, JSON body) of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split()[1]), json.loads(body)


def timed(f, *args) -> float:
    """Wall-clock seconds of one call to f."""
    started = time.monotonic()
    f(*args)
    return time.monotonic() - started


def test_slow_and_vanishing_clients_do_not_hold_up_the_others(server, translator):
    """Held up would mean waiting for a client that never finishes (30 s socket timeouts and more); promptly is
    measured against the same requests on the idle server just before, so a busy machine moves both."""
    idle = max(timed(server.translate, texts(i, 2)) for i in range(3))
    prompt = max(10.0, 20 * idle)
    body = json.dumps({"texts": ["一二三", "四五"], "beam": 1}).encode()
    slow = raw_request(server.port, body, 10)  # trickles: 10 bytes now, the rest later
    raw_request(server.port, body, 10).close()  # goes away half-way through its body
    gone = raw_request(server.port, json.dumps({"texts": [LONG] * 4, "beam": 4}).encode(), 10**6)
    gone.close()  # goes away while its (slow) translation is being decoded
    for i in range(10):  # meanwhile everybody else is answered, promptly and correctly
        started = time.monotonic()
        r = server.translate(texts(i, 2))
        assert r.status_code == 200 and r.json()["translations"] == translator.translate(texts(i, 2), beam=1)
        assert time.monotonic() - started < prompt
    slow.sendall(body[10:])  # the slow client finishes and gets its answer too
    status, reply = read_response(slow)
    slow.close()
    assert status == 200 and reply["translations"] == translator.translate(["一二三", "四五"], beam=1)
    assert httpx.get(f"{server.url}/v1/health").json()["status"] == "ok"
    assert server.proc.poll() is None


def test_sigterm_answers_the_requests_in_flight_and_exits_0(run_dir, translator, tmp_path):
    server = Server(run_dir, tmp_path / "serve.log", "--max-batch", "1", slow_decode_s=0.3)
    try:
        pool = concurrent.futures.ThreadPoolExecutor(6)
        sent = [pool.submit(server.translate, [LONG[: 200 + 10 * i]], 8, 300) for i in range(6)]
        deadline = time.monotonic() + 60
        while httpx.get(f"{server.url}/v1/health").json()["waiting"] < 5 and time.monotonic() < deadline:
            time.sleep(0.02)  # until all six are in: five wait behind the one decoding (a request that has not
            # connected when the signal comes is rightly refused, so the signal waits for the slowest client)
        server.proc.send_signal(signal.SIGTERM)
        in_flight = sum(not f.done() for f in sent)
        replies = [f.result(timeout=300) for f in sent]
        code = server.proc.wait(timeout=120)
    finally:
        server.stop()
    assert in_flight >= 3  # these were still being decoded or queued when the signal came
    assert code == 0, server.log.read_text()
    for i, r in enumerate(replies):
        assert r.status_code == 200 and r.json()["translations"] == translator.translate([LONG[: 200 + 10 * i]], beam=8)
    with pytest.raises(httpx.ConnectError):  # and it is gone
        httpx.get(f"{server.url}/v1/health", timeout=2)


@pytest.mark.slow
def test_memory_stays_flat_under_load_and_faults(server):
    """3 rounds of 1,000 requests (bursts of 32 clients, 1 in 10 vanishing mid-request): RSS after each round."""
    def one(i: int) -> int:
        if i % 10 == 0:
            raw_request(server.port, json.dumps({"texts": texts(i, 8), "beam": 2}).encode(), 10**6).close()
            return 0
        return server.translate(texts(i, 8), beam=2).status_code

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        assert set(pool.map(one, range(200))) <= {0, 200}  # warm up: allocator pools, caches
        rss = [server.rss_kib()]
        for round_ in range(3):
            assert set(pool.map(one, range(1000 * round_, 1000 * (round_ + 1)))) <= {0, 200}
            rss.append(server.rss_kib())
    print(f"server RSS (KiB) after warm-up and after each 1,000 requests: {rss}")
    assert rss[-1] - rss[1] < 32 * 1024, rss  # no growth with the number of requests served (< 32 MiB)
