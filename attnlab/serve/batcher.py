"""Gathers concurrent translation requests into batches for the decoder.

Each sentence of a request is queued as a job with its beam and a future. One worker task takes the
first waiting job, then gathers more until the batch holds `max_batch` sentences, or as many as were in
flight during the previous round (that round's batch plus what queued up while it decoded), or until
`window_ms` has passed since it took the first job; then it runs the Translator on the batch in a thread
of its own. While that batch decodes, new jobs pile up in the queue for the next round.

Why "as many as were in flight": clients answered together send again together, a few milliseconds
apart. A worker that starts on whatever is waiting splits them into two half batches that take turns
for good; expecting the previous round's load lets those requests join one batch, while a lone client
(previous round: one sentence) never waits. `max_batch = 1` turns batching off: one sentence per
decoder call, no waiting.

The model is only ever used from that one thread, never by two callers at once. Jobs of different beams
or decoding options, or asking for attention maps or hypotheses, share a batch but are decoded in separate
calls (the Translator takes one set of options per call, and attention maps come from a single-sentence
pass). So sampled outputs depend on the seed, the texts and the requests with the same options that share
their batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from attnlab.decoding import DecodeOptions
from attnlab.errors import AttnlabError
from attnlab.translate.base import TranslatorBase

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """More sentences are waiting than the queue takes; the caller should retry later."""


@dataclass(frozen=True)
class Detail:
    """How to decode jobs whose results are hypotheses (`TranslatorBase.translate_hypotheses`)."""

    opts: DecodeOptions
    alignment: bool = False
    alignment_layer: int | None = None
    replace_unknowns: bool = False


@dataclass
class _Job:
    text: str
    beam: int | None
    attention: bool  # True: the result is the Translator's AttentionMaps (None for an empty sentence)
    future: asyncio.Future
    detail: Detail | None = None  # set: the result is the text's list of Translations (with attention: the
    # maps, from a decode with detail.opts)
    prefix: str = ""  # the target start the outputs continue


@dataclass
class BatchStats:
    batches: int = 0  # decoder rounds run
    sentences: int = 0  # sentences decoded
    largest: int = 0  # most sentences in one round


class Batcher:
    def __init__(self, translator: TranslatorBase, *, max_batch: int, window_ms: float, max_queue: int) -> None:
        """The sizes come from ServeSettings, checked by its `validate`."""
        self.translator = translator
        self.max_batch, self.window_s, self.max_queue = max_batch, window_ms / 1000, max_queue
        self.stats = BatchStats()
        self._expect = 1  # sentences in flight during the last round: what the next batch waits for
        self._queue: asyncio.Queue[_Job] | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def waiting(self) -> int:
        """Sentences queued and not yet taken by the worker."""
        return self._queue.qsize() if self._queue is not None else 0

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attnlab-decoder")
        self._worker = asyncio.create_task(self._run(), name="attnlab-batcher")

    async def stop(self) -> None:
        """Stop the worker; jobs still waiting fail with an error."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(AttnlabError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def translate(self, texts: Sequence[str], beam: int | None = None) -> list[str]:
        """One translation per text, in order."""
        return await self._submit(texts, beam, attention=False)

    async def attention(self, texts: Sequence[str], beam: int | None = None) -> list[Any]:
        """One AttentionMaps per text (None where the text has no tokens), in order."""
        return await self._submit(texts, beam, attention=True)

    async def hypotheses(self, texts: Sequence[str], detail: Detail, prefixes: Sequence[str] | None = None,
                         attention: bool = False) -> list[Any]:
        """One list of Translations per text (with `attention`: one AttentionMaps or None), in order."""
        return await self._submit(texts, None, attention, detail, prefixes)

    async def _submit(self, texts: Sequence[str], beam: int | None, attention: bool, detail: Detail | None = None,
                      prefixes: Sequence[str] | None = None) -> list[Any]:
        if self._queue is None:
            raise RuntimeError("Batcher.start() has not been called")
        if self._queue.qsize() + len(texts) > self.max_queue:
            raise QueueFullError(f"{self._queue.qsize()} sentences are waiting (the queue takes {self.max_queue})")
        loop = asyncio.get_running_loop()
        prefixes = prefixes or [""] * len(texts)
        jobs = [_Job(text, beam, attention, loop.create_future(), detail, prefix)
                for text, prefix in zip(texts, prefixes)]
        for job in jobs:
            self._queue.put_nowait(job)
        return list(await asyncio.gather(*(job.future for job in jobs)))

    async def _run(self) -> None:
        while True:
            await self._process(await self._gather())

    async def _gather(self) -> list[_Job]:
        """The next batch: the first job, then more until max_batch, the expected load, or the window's end."""
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        target = min(self.max_batch, self._expect)
        started = loop.time()
        deadline = started + self.window_s
        while len(batch) < self.max_batch:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - loop.time()
            if len(batch) >= target or remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    batch.append(await self._queue.get())
            except TimeoutError:
                break
        log.debug("batch of %d (expected %d) gathered in %.1f ms", len(batch), target, 1000 * (loop.time() - started))
        return [job for job in batch if not job.future.done()]  # drop jobs whose request went away

    async def _process(self, batch: list[_Job]) -> None:
        if not batch:
            return
        groups: dict[tuple[int | None, bool, Detail | None], list[_Job]] = {}
        for job in batch:
            groups.setdefault((job.beam, job.attention, job.detail), []).append(job)
        loop = asyncio.get_running_loop()
        for (beam, attention, detail), jobs in groups.items():
            try:
                results = await loop.run_in_executor(self._executor, self._decode, jobs, beam, attention, detail)
            except asyncio.CancelledError:  # stop() while decoding: nobody will answer these
                _settle(batch, error=AttnlabError("the server is shutting down"))
                raise
            except Exception as e:  # a failed call fails its requests, never the worker
                log.exception("decoding %d sentences (beam %s) failed", len(jobs), beam)
                _settle(jobs, error=e)
            else:
                _settle(jobs, results=results)
        self._expect = len(batch) + self._queue.qsize()
        self.stats.batches += 1
        self.stats.sentences += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))

    def _decode(self, jobs: list[_Job], beam: int | None, attention: bool, detail: Detail | None) -> list[Any]:
        """Runs in the decoder thread."""
        texts = [job.text for job in jobs]
        if attention:
            return [self._attention_one(job, beam) for job in jobs]
        if detail is None:
            return self.translator.translate(texts, beam)
        return self.translator.translate_hypotheses(
            texts, detail.opts, prefixes=[job.prefix for job in jobs], alignment=detail.alignment,
            alignment_layer=detail.alignment_layer, replace_unknowns=detail.replace_unknowns)

    def _attention_one(self, job: _Job, beam: int | None) -> Any:
        if not job.text.strip():
            return None
        try:
            if job.detail is None:
                return self.translator.attention(job.text, beam)
            return self.translator.attention(job.text, opts=job.detail.opts, prefix=job.prefix)
        except AttnlabError as e:  # the text normalises to no tokens at all
            if e.field is not None:  # ... but not an option's error: that one fails the request
                raise
            return None



def _settle(jobs: list[_Job], results: list[Any] | None = None, error: Exception | None = None) -> None:
    """Resolve the futures still waiting (a request that went away has cancelled its own)."""
    for i, job in enumerate(jobs):
        if job.future.done():
            continue
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(results[i])
