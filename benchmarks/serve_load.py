"""Load on `attnlab serve`: N concurrent clients on loopback for a bounded time, with batching on and
off, in one run; requests/s, sentences/s, p50/p95/p99 latency, errors, and the on/off ratio.

    python benchmarks/serve_load.py [--model runs/demo] [--clients 16] [--seconds 10] [--beam 4]

Each mode gets a fresh server process (the same model, settings and torch threads); "off" is
--max-batch 1, one sentence per decoder call. Every client sends one request at a time, each holding
`--texts` sentences drawn in turn from the model's test split (or a built-in list), and starts its next
request when the last one is answered; requests that fail or time out count as errors. Only 127.0.0.1 is
used, and everything stops by itself after `--seconds` per mode (plus the warm-up and one request timeout).

Also shown per mode: the mean sentences per decoder call, and the server's CPU time per sentence. On a
busy machine the wall-clock figures depend on what else runs; CPU per sentence much less so.

The two modes run as `--pairs` on/off pairs, one after the other; the headline is the median of the
pairs' on/off ratios with their spread (min-max). The pairs are written to benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from attnlab.errors import AttnlabError
from attnlab.serve.settings import ServeSettings

FALLBACK = {
    "zh": ["我们试试看！", "你今天想吃什么？", "这本书是我朋友写的。", "我不知道他在哪里。", "明天会下雨吗？",
           "他每天早上六点起床。", "这个问题很难回答。", "我想去中国学习中文。"],
    "en": ["Let's try it!", "What do you want to eat today?", "My friend wrote this book.",
           "I don't know where he is.", "Will it rain tomorrow?", "He gets up at six every morning."],
}


def serve_forever(model: str, max_batch: int, window_ms: float, threads: int, conn) -> None:
    """The server process: load the model, listen on a free loopback port, send the port back, serve."""
    import torch
    import uvicorn

    from attnlab.cli.serve import listen
    from attnlab.serve.app import create_app
    from attnlab.translate.pytorch import Translator

    if threads > 0:
        torch.set_num_threads(threads)
    settings = ServeSettings(port=0, max_batch=max_batch, batch_window_ms=window_ms)
    app = create_app(Translator.load(model), settings, run_dir=model)
    sock = listen("127.0.0.1", 0)
    conn.send(sock.getsockname()[1])
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])


def source_sentences(model: str) -> list[str]:
    """Source sentences of the model's test split, or a few built-in ones where it is absent."""
    from attnlab import checkpoint
    from attnlab.data.parallel import load_pairs

    cfg = checkpoint.load_run_config(Path(model))
    try:
        groups = load_pairs(cfg.data.test, cfg.direction).references()
        sentences = [src for src, _ in groups[:500] if src.strip()]
    except Exception:  # any unreadable split: the benchmark still runs on the built-in sentences
        sentences = []
    return sentences or FALLBACK[cfg.src_lang]


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests only
    errors: list[str] = field(default_factory=list)
    sentences: int = 0
    seconds: float = 0.0  # measured wall time
    server_cpu: float = 0.0  # CPU seconds the server process used meanwhile
    client_cpu: float = 0.0  # CPU seconds these clients used meanwhile
    batches: int = 0  # decoder rounds the server ran meanwhile


async def client(http: httpx.AsyncClient, texts, per_request: int, beam: int, until: float, load: Load) -> None:
    while time.monotonic() < until:
        batch = [next(texts) for _ in range(per_request)]
        started = time.monotonic()
        try:
            r = await http.post("/v1/translate", json={"texts": batch, "beam": beam})
            if r.status_code != 200 or len(r.json()["translations"]) != len(batch):
                load.errors.append(f"{r.status_code}: {r.text[:200]}")
                continue
        except httpx.HTTPError as e:
            load.errors.append(f"{type(e).__name__}: {e}")
            continue
        load.latencies.append(time.monotonic() - started)
        load.sentences += len(batch)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


async def run_clients(http: httpx.AsyncClient, texts, args: argparse.Namespace, seconds: float, load: Load) -> None:
    until = time.monotonic() + seconds
    await asyncio.gather(*(client(http, texts, args.texts, args.beam, until, load) for _ in range(args.clients)))


async def run_load(url: str, sentences: list[str], args: argparse.Namespace, server_pid: int) -> Load:
    """Warm up (only failures count), then measure for args.seconds: latencies, CPU, decoder rounds."""
    texts = itertools.cycle(sentences)
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=args.timeout) as http:
        warm = Load()
        await run_clients(http, texts, args, args.warmup, warm)
        load, before = Load(errors=warm.errors), (await http.get("/v1/health")).json()
        cpu, started = (cpu_seconds(server_pid), time.process_time()), time.monotonic()
        await run_clients(http, texts, args, args.seconds, load)
        load.seconds = time.monotonic() - started
        load.server_cpu, load.client_cpu = cpu_seconds(server_pid) - cpu[0], time.process_time() - cpu[1]
        after = (await http.get("/v1/health")).json()
    load.batches = after["batches"] - before["batches"]
    return load


def start_server(args: argparse.Namespace, max_batch: int) -> tuple[multiprocessing.Process, str]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=serve_forever, args=(args.model, max_batch, args.window_ms, args.threads, child),
                       daemon=True)
    proc.start()
    if not parent.poll(120):
        proc.kill()
        raise SystemExit("the server did not start within 120 s")
    url = f"http://127.0.0.1:{parent.recv()}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not answer /v1/health within 60 s")


def stop_server(proc: multiprocessing.Process) -> None:
    proc.terminate()
    proc.join(10)
    if proc.is_alive():
        proc.kill()
        proc.join()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summary(mode: str, load: Load) -> dict:
    ms = [x * 1000 for x in load.latencies]
    return {"mode": mode, "requests": len(ms), "errors": len(load.errors),
            "requests_s": round(len(ms) / load.seconds, 2), "sentences_s": round(load.sentences / load.seconds, 2),
            "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
            "p99_ms": round(percentile(ms, 99), 1),
            "mean_batch": round(load.sentences / max(load.batches, 1), 1),
            "server_cpu_ms_per_sentence": round(1000 * load.server_cpu / max(load.sentences, 1), 1),
            "client_cpu_s": round(load.client_cpu, 1), "first_errors": load.errors[:3]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="runs/demo", help="run directory of a trained model (default: runs/demo)")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients (default: 16)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured time per mode (default: 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured load first, per mode (default: 2)")
    p.add_argument("--texts", type=int, default=1, help="sentences per request (default: 1)")
    p.add_argument("--beam", type=int, default=4, help="beam size of every request (default: 4)")
    p.add_argument("--max-batch", type=int, default=32, help="the server's --max-batch with batching on (default: 32)")
    d = ServeSettings()
    p.add_argument("--window-ms", type=float, default=d.batch_window_ms,
                   help=f"the server's --batch-window-ms (default: {d.batch_window_ms:g})")
    p.add_argument("--threads", type=int, default=0, help="torch threads in the server (default 0: torch's own, "
                   "as `attnlab serve` uses)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as an error")
    p.add_argument("--pairs", type=int, default=3, help="on/off pairs to run (the headline is their median ratio)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/serve.json"), help="where to write the pairs")
    args = p.parse_args()
    try:
        sentences = source_sentences(args.model)
    except AttnlabError as e:
        raise SystemExit(f"serve_load: {e} (train one first: make demo)") from None
    print(f"model {args.model}; {args.clients} clients x {args.seconds:g} s per mode; {args.texts} sentence(s) "
          f"per request; beam {args.beam}; server threads {args.threads or 'default'}; {len(sentences)} distinct sentences")
    pairs = []
    for _ in range(args.pairs):
        on = run_mode("batching on", args.max_batch, sentences, args)
        off = run_mode("batching off", 1, sentences, args)
        pairs.append({"on": on, "off": off, **report_ratio(on, off)})
    ratios = [pair["ratio"] for pair in pairs]
    errors = sum(pair["errors"] for pair in pairs)
    median = statistics.median(ratios)
    print(f"batching on / off over {len(pairs)} pairs: median {median:.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) "
          f"sentences/s; errors: {errors} (goal: >= 3x and 0 errors at {args.clients} clients: "
          f"{'met' if median >= 3 and errors == 0 else 'NOT met'})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": args.model, "clients": args.clients, "seconds": args.seconds,
                                     "beam": args.beam, "texts": args.texts, "threads": args.threads,
                                     "median_ratio": median, "ratio_min": min(ratios), "ratio_max": max(ratios),
                                     "errors": errors, "pairs": pairs}, indent=1) + "\n")


def run_mode(mode: str, max_batch: int, sentences: list[str], args: argparse.Namespace) -> dict:
    """A fresh server with this --max-batch, loaded for the bounded time; prints and returns the summary."""
    proc, url = start_server(args, max_batch)
    try:
        result = summary(mode, asyncio.run(run_load(url, sentences, args, proc.pid)))
    finally:
        stop_server(proc)
    print(json.dumps({k: v for k, v in result.items() if k != "first_errors"}))
    for error in result["first_errors"]:
        print(f"  error: {error}")
    return result


def report_ratio(on: dict, off: dict) -> dict:
    """Print and return one pair's on/off ratios and errors."""
    ratio = on["sentences_s"] / off["sentences_s"] if off["sentences_s"] else float("inf")
    errors = on["errors"] + off["errors"]
    cpu_ratio = off["server_cpu_ms_per_sentence"] / max(on["server_cpu_ms_per_sentence"], 1e-9)
    print(f"pair: batching on / off {ratio:.2f}x sentences/s, server CPU per sentence off / on {cpu_ratio:.2f}x "
          f"(what batching saves, however loaded the machine); errors {errors}")
    return {"ratio": ratio, "cpu_ratio": cpu_ratio, "errors": errors}

if __name__ == "__main__":
    main()
