"""``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings`` over an Engine."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from .. import ContextOverflowError, Engine, EngineRequest, Grammar, Sampling
from .._types import Completion, FinishReason, TokenLogprob
from ._errors import APIError, check_model, invalid
from ._schemas import (
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    EmbeddingRequest,
    ResponseFormat,
    _Sampling,
)
from ._tools import ToolPlan


class LLMService:
    """The language model behind the API: its name and the engine."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.created = int(time.time())

    def embed(self, texts: list[str]) -> Any:
        return self.engine.llm.embed(texts)  # (LLM calls from several threads take turns)


def _finish(reason: FinishReason) -> str:
    return "length" if reason == "length" else "stop"


def _sampling(body: _Sampling, index: int) -> Sampling:
    bias: dict[int, float] = {}
    for key, value in (body.logit_bias or {}).items():
        try:
            bias[int(key)] = value
        except ValueError:
            raise invalid(f"logit_bias keys must be token ids, got {key!r}", "logit_bias") from None
    seed = None if body.seed is None else (body.seed + index) % 2**32
    return Sampling(temperature=body.temperature, top_p=body.top_p, top_k=body.top_k,
                    min_p=body.min_p, repeat_penalty=body.repeat_penalty,
                    presence_penalty=body.presence_penalty,
                    frequency_penalty=body.frequency_penalty, logit_bias=bias, seed=seed)


def _schema(fmt: ResponseFormat | None) -> Any:
    """The JSON schema a response_format asks for (None: free text)."""
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "object"}
    if fmt.json_schema is None:
        raise invalid("response_format of type json_schema needs a json_schema",
                      "response_format.json_schema")
    return fmt.json_schema.schema_ or {"type": "object"}


def _grammar(schema: Any, param: str) -> Grammar:
    try:
        return Grammar.from_json_schema(schema)
    except (ValueError, TypeError) as e:
        raise invalid(f"invalid JSON schema: {e}", param) from e


def _message_text(m: ChatMessage, index: int) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    parts = []
    for part in m.content:
        if part.type != "text" or part.text is None:
            raise invalid(f"messages[{index}]: content parts of type {part.type!r} are not "
                          "supported by this model (text only)", f"messages[{index}].content")
        parts.append(part.text)
    return "".join(parts)


def _lp_chat(lp: TokenLogprob) -> dict[str, Any]:
    def entry(text: str, value: float) -> dict[str, Any]:
        return {"token": text, "logprob": value, "bytes": list(text.encode())}
    return {**entry(lp.text, lp.logprob), "top_logprobs": [entry(t, v) for _, t, v in lp.top]}


def _usage(completions: list[Completion]) -> dict[str, Any]:
    prompt = completions[0].usage.prompt_tokens if completions else 0
    cached = sum(c.usage.cached_tokens for c in completions) // max(len(completions), 1)
    generated = sum(c.usage.completion_tokens for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": generated,
            "total_tokens": prompt + generated, "prompt_tokens_details": {"cached_tokens": cached}}


class _Runs:
    """The n generations of one API request, their events brought to the event loop."""

    def __init__(self, n: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self.requests: list[EngineRequest] = []
        self.n = n

    def listener(self, index: int) -> Callable[[Any], None]:
        def on_event(event: Any) -> None:
            # RuntimeError: the loop is gone (shutdown), nobody listens any more.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.queue.put_nowait, (index, event))
        return on_event

    def cancel(self) -> None:
        for r in self.requests:
            r.cancel()

    async def results(self, request: Request) -> list[Completion] | None:
        """Every generation's Completion, in choice order; None if the client left. A failure
        inside the model cancels the others and is a 500."""
        done: list[Completion | None] = [None] * self.n
        async for index, event in self.events(request):
            if isinstance(event, BaseException):
                self.cancel()
                raise _failure(event) from event
            if isinstance(event, Completion):
                done[index] = event
        if any(c is None for c in done):
            return None
        return [c for c in done if c is not None]

    async def events(self, request: Request) -> AsyncIterator[tuple[int, Any]]:
        """(choice index, event) until every generation ended; a client that disconnects
        cancels them (checked every 0.2 s while nothing comes)."""
        left = self.n
        while left:
            try:
                index, event = await asyncio.wait_for(self.queue.get(), 0.2)
            except TimeoutError:
                if await request.is_disconnected():
                    self.cancel()
                    return
                continue
            if not isinstance(event, str):
                left -= 1
            yield index, event


def _submit_error(e: Exception, prompt_param: str) -> APIError:
    if isinstance(e, ContextOverflowError):
        return invalid(str(e), prompt_param, "context_length_exceeded")
    if isinstance(e, (ValueError, TypeError)):
        return invalid(str(e))
    raise e


def _start(service: LLMService, body: _Sampling, runs: _Runs,
           submit: Callable[..., EngineRequest], **options: Any) -> None:
    max_tokens = getattr(body, "max_completion_tokens", None)
    if max_tokens is None:
        max_tokens = body.max_tokens
    # No limit given: until the model stops or the sequence's window is full (as llama-server).
    options["max_tokens"] = service.engine.n_ctx if max_tokens is None else max_tokens
    if body.stop is not None:
        options["stop"] = body.stop
    try:
        for i in range(body.n):
            runs.requests.append(submit(sampling=_sampling(body, i),
                                        on_event=runs.listener(i), **options))
    except Exception as e:
        runs.cancel()
        raise _submit_error(e, "messages" if hasattr(body, "messages") else "prompt") from e


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _stream_response(chunks: AsyncIterator[bytes], runs: _Runs) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in chunks:
                yield chunk
            yield b"data: [DONE]\n\n"
        finally:  # the client went away (or the stream ended): free the sequences
            runs.cancel()
    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


def _failure(event: BaseException) -> APIError:
    """The 500 of a generation that failed inside the model."""
    return APIError(500, f"generation failed: {type(event).__name__}: {event}")


def router(service: LLMService) -> APIRouter:
    api = APIRouter()

    @api.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        check_model(body.model, service.name, "language")
        messages = [{"role": m.role, "content": _message_text(m, i)}
                    for i, m in enumerate(body.messages)]
        plan = ToolPlan.make(body, messages)
        schema = plan.schema if plan.schema is not None else _schema(body.response_format)
        options: dict[str, Any] = {}
        if schema is not None:
            options["grammar"] = _grammar(schema, "tools" if plan.active else "response_format")
        if body.logprobs:
            options["logprobs"] = body.top_logprobs or 0
        runs = _Runs(body.n)
        _start(service, body, runs, lambda **kw: service.engine.submit_chat(plan.messages, **kw),
               **options)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "created": created, "model": service.name,
                "system_fingerprint": None}
        if body.stream:
            return _stream_response(_chat_chunks(runs, request, head, body, plan), runs)
        completions = await runs.results(request)
        if completions is None:
            return Response(status_code=499)  # the client left
        choices = []
        for i, c in enumerate(completions):
            message: dict[str, Any] = {"role": "assistant", "content": c.text, "refusal": None}
            finish = _finish(c.finish_reason)
            if plan.active:
                content, calls = plan.reply(c.text)
                message["content"] = content
                if calls is not None:
                    message["tool_calls"] = calls
                    finish = "tool_calls"
            lps = ({"content": [_lp_chat(lp) for lp in c.logprobs], "refusal": None}
                   if c.logprobs is not None else None)
            choices.append({"index": i, "message": message, "logprobs": lps,
                            "finish_reason": finish})
        return JSONResponse({**head, "object": "chat.completion", "choices": choices,
                             "usage": _usage(completions)})

    async def _chat_chunks(runs: _Runs, request: Request, head: dict[str, Any],
                           body: ChatCompletionRequest, plan: ToolPlan) -> AsyncIterator[bytes]:
        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            return _sse({**head, "object": "chat.completion.chunk", "choices": choices, **extra})

        for i in range(body.n):
            yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""},
                          "logprobs": None, "finish_reason": None}])
        completions: list[Completion] = []
        async for index, event in runs.events(request):
            if isinstance(event, str):
                if not plan.active:
                    yield chunk([{"index": index, "delta": {"content": event},
                                  "logprobs": None, "finish_reason": None}])
            elif isinstance(event, BaseException):
                yield _sse(_failure(event).body())
                return
            else:
                completions.append(event)
                finish = _finish(event.finish_reason)
                delta: dict[str, Any] = {}
                if plan.active:
                    content, calls = plan.reply(event.text)
                    if calls is not None:
                        delta = {"tool_calls": [{**c, "index": k} for k, c in enumerate(calls)]}
                        finish = "tool_calls"
                    else:
                        delta = {"content": content}
                lps = ({"content": [_lp_chat(lp) for lp in event.logprobs], "refusal": None}
                       if event.logprobs is not None else None)
                yield chunk([{"index": index, "delta": delta, "logprobs": lps,
                              "finish_reason": finish}])
        if body.stream_options and body.stream_options.include_usage and completions:
            yield chunk([], usage=_usage(completions))

    @api.post("/v1/completions", response_model=None)
    async def completions(body: CompletionRequest, request: Request) -> Response:
        check_model(body.model, service.name, "language")
        if isinstance(body.prompt, list) and body.prompt and isinstance(body.prompt[0], str):
            if len(body.prompt) != 1:
                raise invalid("one prompt per request (send several requests: they are "
                              "batched)", "prompt")
            prompt: Any = body.prompt[0]
        else:
            prompt = body.prompt
        if body.suffix:
            raise invalid("suffix (fill-in-the-middle) is not supported", "suffix")
        options: dict[str, Any] = {}
        if (schema := _schema(body.response_format)) is not None:
            options["grammar"] = _grammar(schema, "response_format")
        if body.logprobs is not None:
            options["logprobs"] = body.logprobs
        runs = _Runs(body.n)
        _start(service, body, runs, lambda **kw: service.engine.submit(prompt, **kw), **options)
        echo = ""
        if body.echo:
            echo = prompt if isinstance(prompt, str) else service.engine.llm.detokenize(prompt)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": rid, "object": "text_completion", "created": created,
                "model": service.name, "system_fingerprint": None}
        if body.stream:
            async def chunks() -> AsyncIterator[bytes]:
                sent: list[Completion] = []
                if echo:
                    for i in range(body.n):
                        yield _sse({**head, "choices": [{"index": i, "text": echo,
                                                          "logprobs": None,
                                                          "finish_reason": None}]})
                async for index, event in runs.events(request):
                    if isinstance(event, str):
                        yield _sse({**head, "choices": [{"index": index, "text": event,
                                                          "logprobs": None,
                                                          "finish_reason": None}]})
                    elif isinstance(event, BaseException):
                        yield _sse(_failure(event).body())
                        return
                    else:
                        sent.append(event)
                        yield _sse({**head, "choices": [{"index": index, "text": "",
                                                          "logprobs": _lp_text(event),
                                                          "finish_reason":
                                                              _finish(event.finish_reason)}]})
                if body.stream_options and body.stream_options.include_usage and sent:
                    yield _sse({**head, "choices": [], "usage": _usage(sent)})
            return _stream_response(chunks(), runs)
        results = await runs.results(request)
        if results is None:
            return Response(status_code=499)  # the client left
        choices = [{"index": i, "text": echo + c.text, "logprobs": _lp_text(c),
                    "finish_reason": _finish(c.finish_reason)} for i, c in enumerate(results)]
        return JSONResponse({**head, "choices": choices, "usage": _usage(results)})

    @api.post("/v1/embeddings", response_model=None)
    async def embeddings(body: EmbeddingRequest) -> Response:
        check_model(body.model, service.name, "language")
        llm = service.engine.llm
        raw = body.input
        if isinstance(raw, str):
            texts = [raw]
        elif raw and isinstance(raw[0], int):
            texts = [llm.detokenize(raw)]
        elif raw and isinstance(raw[0], list):
            texts = [llm.detokenize(t) for t in raw]
        else:
            texts = list(raw)  # type: ignore[arg-type]
        for i, t in enumerate(texts):
            if not t:
                raise invalid(f"input[{i}] is empty", "input")
        try:
            vectors = await run_in_threadpool(service.embed, texts)
        except ContextOverflowError as e:
            raise invalid(str(e), "input", "context_length_exceeded") from e
        if body.dimensions is not None:
            if body.dimensions > vectors.shape[1]:
                raise invalid(f"dimensions must be at most {vectors.shape[1]}", "dimensions")
            vectors = vectors[:, :body.dimensions]
        data = []
        for i, v in enumerate(vectors):
            emb: Any = (base64.b64encode(v.astype("<f4").tobytes()).decode()
                        if body.encoding_format == "base64" else v.tolist())
            data.append({"object": "embedding", "index": i, "embedding": emb})
        n_tokens = sum(len(llm.tokenize(t)) for t in texts)
        return JSONResponse({"object": "list", "data": data, "model": service.name,
                             "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}})

    return api


def _lp_text(c: Completion) -> dict[str, Any] | None:
    """The legacy completions' logprobs object."""
    if c.logprobs is None:
        return None
    offsets, at = [], 0
    for lp in c.logprobs:
        offsets.append(at)
        at += len(lp.text)
    return {"tokens": [lp.text for lp in c.logprobs],
            "token_logprobs": [lp.logprob for lp in c.logprobs],
            "top_logprobs": [{t: v for _, t, v in lp.top} for lp in c.logprobs],
            "text_offset": offsets}
