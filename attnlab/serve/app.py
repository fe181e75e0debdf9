"""The HTTP API and the page: `create_app(translator, settings)` returns a FastAPI app for any engine.

    POST /v1/translate  {"texts": [...], "beam": 4, "attention": false, "attention_layers": false, and the
                        options below} -> {"translations": [...], "attention": null | [...],
                        "hypotheses": null | [...], "model": {...}, "timing_ms": ...}
    GET  /v1/health     liveness and batching counters
    GET  /v1/model      direction, sizes, vocabulary, decoding defaults, training scores, request limits
    GET  /openapi.json  FastAPI's schema of the above (the interactive docs are off: they load from a CDN)
    GET  /              the page (static/index.html, app.js, style.css)

With "attention": true each translation comes with its source and target subword pieces and the
decoder's cross-attention over the source, (T, S): averaged over heads and layers, and with
"attention_layers": true also per layer, (L, T, S), averaged over heads. Row t is the step that
produced target piece t (the last is <eos>); each row sums to 1.

Decoding options (`TranslateRequest` documents each in the OpenAPI schema): "n_best", "scores", "prefix"
(a target start, one for all texts or one per text), "alignment" (with "alignment_layer"),
"replace_unknowns", "sample" ("topk" / "topp" with "top_k", "top_p", "temperature", "seed"), and
"max_decoding_length", "min_decoding_length", "no_repeat_ngram_size", "repetition_penalty" (CTranslate2's
names; passed to CTranslate2 on that engine). With any of them, "hypotheses" holds per text the n-best
translations with their scores (and alignments); "translations" holds the best of each (with "attention",
the output its maps belong to: the same, except that a sampled one is a draw of its own).

Every error is JSON {"error": "..."} naming what is wrong: 400 malformed JSON, 413 body too large,
415 not JSON, 422 wrong types / empty list / over-limit texts, 404/405 unknown route or method,
503 queue full. Requests are parsed as JSON into typed fields and nothing else: the server loads
no pickles and never evaluates its input. Lone UTF-16 surrogates escaped in a JSON string ("\\ud800")
become U+FFFD rather than failing the request.
"""

import json
import logging
import re
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from attnlab import checkpoint
from attnlab.errors import AttnlabError
from attnlab.model import count_parameters
from attnlab.serve.batcher import Batcher, Detail, QueueFullError
from attnlab.serve.settings import ServeSettings
from attnlab.tokenizer import encodable
from attnlab.translate.base import TranslatorBase

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
PAGE_HEADERS = {  # the page runs only its own files: no inline script, nothing from elsewhere
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}
DIGITS = 4  # attention weights are rounded to this many decimals in responses


# -- response bodies --------------------------------------------------------------------------------

class ErrorBody(BaseModel):
    error: str = Field(description="what is wrong with the request")


class ModelSummary(BaseModel):
    name: str = Field(description="the run directory's name")
    direction: str = Field(description="source-target languages, e.g. zh-en")


class AttentionResult(BaseModel):
    source_tokens: list[str] = Field(description="S source subword pieces")
    target_tokens: list[str] = Field(description="T target pieces produced, ending with <eos>")
    cross: list[list[float]] = Field(description="(T, S) cross-attention, averaged over heads and layers")
    cross_layers: list[list[list[float]]] | None = Field(
        None, description="(L, T, S) cross-attention per decoder layer, averaged over heads (on request)")


class HypothesisResult(BaseModel):
    translation: str
    score: float = Field(description="log_prob over the length penalty ((5 + length) / 6) ** length_penalty")
    log_prob: float = Field(description="the model's log-probability of the translation, <eos> included")
    alignment: str | None = Field(None, description="source-target word links, fast_align's `i-j` (on request)")
    source_words: list[str] | None = Field(None, description="the source words the links count (on request)")
    target_words: list[str] | None = Field(None, description="the target words the links count (on request)")


class TranslateResponse(BaseModel):
    translations: list[str] = Field(description="one translation per text, in order")
    attention: list[AttentionResult] | None = Field(None, description="one per text when asked for")
    hypotheses: list[list[HypothesisResult]] | None = Field(
        None, description="per text, the n-best translations, best first (with any decoding option)")
    model: ModelSummary
    timing_ms: float = Field(description="time spent on the request in the server")


class HealthResponse(BaseModel):
    status: str
    waiting: int = Field(description="sentences queued for the decoder")
    batches: int = Field(description="decoder rounds run so far")
    sentences: int = Field(description="sentences decoded so far")
    largest_batch: int


class ModelInfo(BaseModel):
    name: str
    direction: str
    source_language: str
    target_language: str
    sizes: dict[str, int] = Field(description="d_model, heads, feed-forward width, layers, parameters")
    vocabulary: dict[str, Any] = Field(description="size, joint or not, sentencepiece model type")
    decode: dict[str, Any] = Field(description="default decoding options, and whether the engine gives word "
                                               "alignments and attention maps")
    scores: dict[str, Any] | None = Field(description="dev scores of the served weights (scores.json)")
    limits: dict[str, int] = Field(description="request limits of this server")


def request_model(settings: ServeSettings) -> type[BaseModel]:
    """The request body type, with this server's limits in it (and so in the OpenAPI schema)."""
    Text = Annotated[str, StringConstraints(max_length=settings.max_chars)]

    class TranslateRequest(BaseModel):
        model_config = ConfigDict(strict=True, extra="forbid")  # "4" is not a beam; unknown fields are errors

        texts: list[Text] = Field(min_length=1, max_length=settings.max_texts,
                                  description="sentences to translate (an empty string translates to one)")
        beam: int | None = Field(None, ge=1, le=settings.max_beam,
                                 description="beam size (1: greedy); default: the model's")
        attention: bool = Field(False, description="also return tokens and cross-attention per text")
        attention_layers: bool = Field(False, description="with attention: also the map of each layer")
        n_best: int | None = Field(None, ge=1, le=settings.max_beam,
                                   description="hypotheses per text (at most the beam; with sampling: draws)")
        scores: bool = Field(False, description="return hypotheses with their scores even for n_best 1")
        prefix: Text | list[Text] | None = Field(
            None, description="target text every translation starts with and continues: one for every text, or one "
                              "per text (interactive translation)")
        alignment: bool = Field(False, description="source-target word links of each hypothesis, from the "
                                                   "cross-attention")
        alignment_layer: int | None = Field(None, ge=0, description="decoder layer whose heads give alignments "
                                                                     "(default: every layer)")
        replace_unknowns: bool = Field(False, description="replace each <unk> with the source word it attends to most")
        sample: Literal["topk", "topp"] | None = Field(None, description="sample tokens instead of searching")
        top_k: int | None = Field(None, ge=1, description="sample = topk: draw from the k most likely tokens")
        top_p: float | None = Field(None, gt=0, le=1, description="sample = topp: the probability mass drawn from")
        temperature: float | None = Field(None, gt=0, description="sampling: logits divided by this")
        seed: int | None = Field(None, ge=0, description="sampling: seed of the draws")
        max_decoding_length: int | None = Field(None, ge=1, le=settings.max_output_tokens,
                                                description="longest output in subwords")
        min_decoding_length: int | None = Field(None, ge=0, le=settings.max_output_tokens,
                                                description="shortest output in subwords")
        no_repeat_ngram_size: int | None = Field(None, ge=0, description="no n-gram of this size twice in an output")
        repetition_penalty: float | None = Field(None, gt=0, description="> 1: tokens already output less likely")

    return TranslateRequest


DECODE_FIELDS = ("n_best", "sample", "top_k", "top_p", "temperature", "seed", "max_decoding_length",
                 "min_decoding_length", "no_repeat_ngram_size", "repetition_penalty")  # DecodeConfig's
DETAIL_FIELDS = (*DECODE_FIELDS, "scores", "prefix", "alignment", "replace_unknowns")  # any: hypotheses


# -- the app ----------------------------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def request_detail(body: Any, translator: TranslatorBase, beam: int, info: ModelInfo) -> Detail | None:
    """The decoding options of a request that asks for any (None: a plain translation); a value the options
    refuse (n_best over the beam, a layer the model lacks) is a 422 naming it."""
    if not any(getattr(body, name) not in (None, False) for name in DETAIL_FIELDS):
        return None
    if (body.alignment or body.replace_unknowns) and not getattr(translator, "alignments", False):
        raise ApiError(422, "alignment: this engine gives no attention to align words with")
    layers = info.sizes["decoder_layers"]
    if body.alignment_layer is not None and body.alignment_layer >= layers:
        raise ApiError(422, f"alignment_layer: must be below the model's {layers} decoder layers, "
                            f"got {body.alignment_layer}")
    try:
        opts = translator.options(beam, **{name: getattr(body, name) for name in DECODE_FIELDS})
    except AttnlabError as e:
        raise ApiError(422, f"{(e.field or 'options').removeprefix('decode.')}: {e.message}") from None
    return Detail(opts, body.alignment, body.alignment_layer, body.replace_unknowns)


def request_prefixes(body: Any) -> list[str] | None:
    """One target prefix per text (None: no prefix); a list of the wrong length is a 422."""
    if body.prefix is None or isinstance(body.prefix, str):
        return None if not body.prefix else [body.prefix] * len(body.texts)
    if len(body.prefix) != len(body.texts):
        raise ApiError(422, f"prefix: {len(body.prefix)} prefixes for {len(body.texts)} texts")
    return list(body.prefix)


def hypothesis_result(t: Any, alignment: bool) -> HypothesisResult:
    """A Translation (attnlab.translate.base) as the response gives it."""
    from attnlab.translate.alignment import pharaoh

    return HypothesisResult(translation=t.text, score=round(t.score, DIGITS), log_prob=round(t.log_prob, DIGITS),
                            alignment=pharaoh(t.alignment) if alignment else None,
                            source_words=t.source_words if alignment else None,
                            target_words=t.target_words if alignment else None)


def create_app(translator: TranslatorBase, settings: ServeSettings, *, run_dir: str | Path | None = None) -> FastAPI:
    """The app for one loaded engine; run_dir (optional) names the model and supplies its scores."""
    settings.validate()
    batcher = Batcher(translator, max_batch=settings.max_batch, window_ms=settings.batch_window_ms,
                      max_queue=settings.max_queue)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="attnlab", summary="Transformer translation with its cross-attention",
                  version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.batcher = batcher
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    _add_error_handlers(app)
    attention_maps = getattr(translator, "attention_maps", True)  # engines say; a bare translator is taken at its word
    _add_api(app, batcher, translator, settings, model_info(translator, settings, run_dir), attention_maps)
    _add_page(app)
    return app


def _add_api(app: FastAPI, batcher: Batcher, translator: TranslatorBase, settings: ServeSettings, info: ModelInfo,
             attention_maps: bool) -> None:
    TranslateRequest = request_model(settings)
    summary = ModelSummary(name=info.name, direction=info.direction)
    errors = {code: {"model": ErrorBody} for code in (400, 413, 415, 422, 503)}

    @app.post("/v1/translate", response_model=TranslateResponse, responses=errors)
    async def translate(body: TranslateRequest) -> TranslateResponse:  # type: ignore[valid-type]
        """Translate texts; gathered with other requests into batches for the decoder."""
        started = time.perf_counter()
        if body.attention and not attention_maps:
            raise ApiError(422, "attention: this engine gives no attention maps (serve the run with --engine attnlab)")
        if body.attention and len(body.texts) > settings.max_attention_texts:
            raise ApiError(422, f"texts: at most {settings.max_attention_texts} texts per request with "
                                f"attention, got {len(body.texts)}")
        beam = body.beam if body.beam is not None else info.decode["beam"]  # one batch group per beam
        detail = request_detail(body, translator, beam, info)
        prefixes = request_prefixes(body)
        hypotheses = attention = None
        try:
            if detail is not None:
                results = await batcher.hypotheses(body.texts, detail, prefixes)
                hypotheses = [[hypothesis_result(t, detail.alignment) for t in ts] for ts in results]
            if body.attention:  # each text decoded alone with the same options, its maps read from the decoder
                maps = await (batcher.attention(body.texts, beam) if detail is None
                              else batcher.hypotheses(body.texts, detail, prefixes, attention=True))
                attention = [attention_result(m, body.attention_layers) for m in maps]
                translations = [m.translation if m is not None else "" for m in maps]
            elif hypotheses is not None:
                translations = [hyps[0].translation if hyps else "" for hyps in hypotheses]
            else:
                translations = await batcher.translate(body.texts, beam)
        except QueueFullError as e:
            raise ApiError(503, f"server busy: {e}; retry later") from None
        except AttnlabError as e:
            raise ApiError(422, str(e)) from None
        timing = round((time.perf_counter() - started) * 1000, 2)
        return TranslateResponse(translations=translations, attention=attention, hypotheses=hypotheses,
                                 model=summary, timing_ms=timing)

    @app.get("/v1/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        """The server is up; how much the batcher has done."""
        s = batcher.stats
        return HealthResponse(status="ok", waiting=batcher.waiting, batches=s.batches, sentences=s.sentences,
                              largest_batch=s.largest)

    @app.get("/v1/model", response_model=ModelInfo)
    async def model() -> ModelInfo:
        """The served model: direction, sizes, vocabulary, decoding defaults, training scores, limits."""
        return info


def _add_page(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


# -- what goes into the bodies ------------------------------------------------------------------------

def attention_result(maps: Any, layers: bool) -> AttentionResult:
    """AttentionMaps (cross: (L,H,T,S)) -> tokens and head-averaged maps; None (no tokens) -> empty."""
    if maps is None:
        return AttentionResult(source_tokens=[], target_tokens=[], cross=[], cross_layers=[] if layers else None)
    per_layer = maps.cross.double().mean(dim=1)  # (L,T,S); double so that rounding prints short
    return AttentionResult(
        source_tokens=list(maps.source), target_tokens=list(maps.target),
        cross=per_layer.mean(dim=0).round(decimals=DIGITS).tolist(),  # (T,S)
        cross_layers=per_layer.round(decimals=DIGITS).tolist() if layers else None,
    )


def model_info(translator: TranslatorBase, settings: ServeSettings, run_dir: str | Path | None) -> ModelInfo:
    cfg, m = translator.cfg, translator.cfg.model
    return ModelInfo(
        name=Path(run_dir).name if run_dir is not None else "model",
        direction=cfg.direction, source_language=cfg.src_lang, target_language=cfg.tgt_lang,
        sizes={"d_model": m.d_model, "heads": m.n_heads, "d_ff": m.d_ff, "encoder_layers": m.n_encoder_layers,
               "decoder_layers": m.n_decoder_layers, "parameters": count_parameters(m)},
        vocabulary={"size": m.vocab_size, "joint": cfg.tokenizer.joint, "model_type": cfg.tokenizer.model_type},
        decode={"beam": cfg.decode.beam, "length_penalty": cfg.decode.length_penalty,
                "max_input_tokens": cfg.decode.max_input_tokens, "alignment": getattr(translator, "alignments", False),
                "attention_maps": getattr(translator, "attention_maps", True)},
        scores=load_scores(run_dir),
        limits={"max_texts": settings.max_texts, "max_chars": settings.max_chars,
                "max_body_bytes": settings.max_body_bytes, "max_beam": settings.max_beam,
                "max_attention_texts": settings.max_attention_texts, "max_output_tokens": settings.max_output_tokens},
    )


def load_scores(run_dir: str | Path | None) -> dict[str, Any] | None:
    scores = None if run_dir is None else checkpoint.read_scores(Path(run_dir))
    if run_dir is not None and scores is None:
        log.warning("no readable %s in %s; /v1/model shows no scores", checkpoint.SCORES_FILE, run_dir)
    return scores


# -- errors -------------------------------------------------------------------------------------------

def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = describe_validation(exc.errors(), request.headers)
        return JSONResponse({"error": message}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"{exc.detail}: {request.method} {request.url.path}"
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}"}, status_code=500)


def describe_validation(errors: list[Mapping[str, Any]], headers: Mapping[str, str]) -> tuple[int, str]:
    """(status, one line) for pydantic's errors: malformed JSON 400, not JSON 415, the rest 422."""
    first = errors[0]
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "cannot parse")
        return 400, f"malformed JSON at character {first['loc'][-1]}: {reason}"
    content_type = headers.get("content-type", "")
    if "json" not in content_type.lower():
        return 415, f"the body must be JSON (Content-Type: application/json), got {content_type or 'no Content-Type'!r}"
    lines = [_one_error(e) for e in errors[:3]]
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return 422, "; ".join(lines) + more


def _one_error(error: Mapping[str, Any]) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
    if error.get("type") == "missing" and where == "body":
        return "body: a JSON object like {\"texts\": [\"...\"]} is required"
    return f"{where}: {error.get('msg', 'invalid')}"


# -- body size ----------------------------------------------------------------------------------------

class BodyLimit:
    """ASGI middleware: reads the body up to max_bytes and answers 413 past it (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and not declared.isdigit():
            return await _respond(scope, receive, send, 400, f"Content-Length is not a number: {declared!r}")
        if declared is not None and int(declared) > self.max_bytes:
            return await self._too_large(scope, receive, send, f"{int(declared)} bytes")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                return await self._too_large(scope, receive, send, f"over {self.max_bytes} bytes")
            if not message.get("more_body", False):
                break
        body = mend_surrogates(b"".join(chunks))
        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-length"]
        scope = dict(scope, headers=[*headers, (b"content-length", str(len(body)).encode())])
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, scope: dict, receive: Any, send: Any, size: str) -> None:
        await _respond(scope, receive, send, 413, f"request body too large: {size} (the limit is {self.max_bytes} bytes)")


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]", re.ASCII)


def mend_surrogates(body: bytes) -> bytes:
    """A JSON body whose strings hold lone UTF-16 surrogates ("\\ud800", valid JSON that JavaScript's
    JSON.stringify writes for a broken string) with each made U+FFFD; pydantic would refuse the whole
    request. Bodies without such an escape, or that are not JSON, pass through untouched."""
    if not _SURROGATE_ESCAPE.search(body):
        return body
    try:
        value = json.loads(body)
    except ValueError:  # (UnicodeDecodeError included) the app answers 400 for it
        return body
    return json.dumps(_mend(value), ensure_ascii=False).encode("utf-8")


def _mend(value: Any) -> Any:
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, list):
        return [_mend(v) for v in value]
    if isinstance(value, dict):
        return {encodable(k): _mend(v) for k, v in value.items()}
    return value


async def _respond(scope: dict, receive: Any, send: Any, status: int, message: str) -> None:
    await JSONResponse({"error": message}, status_code=status)(scope, receive, send)


def _replay(body: bytes, receive: Any) -> Any:
    """A receive() that hands out the body read already, then waits on the real one (for disconnects)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
