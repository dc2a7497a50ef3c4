"""``/v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``: requests to the
:class:`Engine` (or the LLM's embeddings), its Completions to the OpenAI API's responses, whole
or streamed as server-sent events.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from .._types import Completion, FinishReason
from ._errors import check_model, invalid
from ._generations import Generations, failure, grammar, response_schema
from ._responses import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatDelta,
    ChatFinish,
    ChoiceLogprobs,
    Embedding,
    EmbeddingList,
    TextChoice,
    TextChunkChoice,
    TextCompletion,
    TextCompletionChunk,
    TextFinish,
    TextLogprobs,
    TopLogprob,
    Usage,
    sse_responses,
)
from ._schemas import ChatCompletionRequest, ChatMessage, CompletionRequest, EmbeddingRequest
from ._services import LLMDep
from ._tools import ToolPlan

router = APIRouter()


@dataclass(frozen=True)
class _Head:
    """What every response (and streamed chunk) to one request starts with."""

    id: str
    created: int
    model: str

    @classmethod
    def new(cls, prefix: str, model: str) -> _Head:
        return cls(f"{prefix}-{uuid.uuid4().hex}", int(time.time()), model)


# -- chat completions --------------------------------------------------------------------------

@router.post("/v1/chat/completions", response_model=ChatCompletion,
             responses=sse_responses("chat.completion.chunk"))
async def chat_completions(body: ChatCompletionRequest, request: Request, service: LLMDep
                           ) -> ChatCompletion | Response:
    check_model(body.model, service.name, "language")
    messages = [{"role": m.role, "content": _message_text(m, i)}
                for i, m in enumerate(body.messages)]
    plan = ToolPlan.make(body, messages)
    schema = plan.schema if plan.schema is not None else response_schema(body.response_format)
    options: dict[str, Any] = {}
    if schema is not None:
        options["grammar"] = grammar(schema, "tools" if plan.active else "response_format")
    if body.logprobs:
        options["logprobs"] = body.top_logprobs or 0
    limit = body.max_tokens if body.max_completion_tokens is None else body.max_completion_tokens
    engine = service.engine
    runs = Generations.start(engine, body, lambda **kw: engine.submit_chat(plan.messages, **kw),
                             max_tokens=limit, prompt_param="messages", **options)
    head = _Head.new("chatcmpl", service.name)
    if body.stream:
        return _event_stream(_chat_chunks(runs, request, head, plan, usage=_usage_asked(body)),
                             runs)
    completions = await runs.results(request)
    if completions is None:
        return Response(status_code=499)  # the client left
    choices: list[ChatChoice] = []
    for i, c in enumerate(completions):
        message: AssistantMessage = {"role": "assistant", "content": c.text, "refusal": None}
        finish: ChatFinish = _finish(c.finish_reason)
        if plan.active:
            content, calls = plan.reply(c.text)
            message["content"] = content
            if calls is not None:
                message["tool_calls"] = calls
                finish = "tool_calls"
        choices.append({"index": i, "message": message, "logprobs": _chat_logprobs(c),
                        "finish_reason": finish})
    return {"id": head.id, "created": head.created, "model": head.model,
            "system_fingerprint": None, "object": "chat.completion", "choices": choices,
            "usage": _usage(completions)}


async def _chat_chunks(runs: Generations, request: Request, head: _Head, plan: ToolPlan, *,
                       usage: bool) -> AsyncIterator[bytes]:
    """The chat completion's events: each choice's role, its text pieces (with tools: the
    call or answer once complete), its end; the usage last (``usage``)."""
    for i in range(runs.n):
        yield _sse(_chat_chunk(head, [{"index": i, "delta": {"role": "assistant", "content": ""},
                                       "logprobs": None, "finish_reason": None}]))
    completions: list[Completion] = []
    async for index, event in runs.events(request):
        if isinstance(event, str):
            if not plan.active:
                yield _sse(_chat_chunk(head, [{"index": index, "delta": {"content": event},
                                               "logprobs": None, "finish_reason": None}]))
        elif isinstance(event, BaseException):
            yield _sse(failure(event).body())
            return
        else:
            completions.append(event)
            finish: ChatFinish = _finish(event.finish_reason)
            delta: ChatDelta = {}
            if plan.active:
                content, calls = plan.reply(event.text)
                if calls is not None:
                    delta = {"tool_calls": [{**c, "index": k} for k, c in enumerate(calls)]}
                    finish = "tool_calls"
                else:
                    delta = {"content": content}
            yield _sse(_chat_chunk(head, [{"index": index, "delta": delta,
                                           "logprobs": _chat_logprobs(event),
                                           "finish_reason": finish}]))
    if usage and completions:
        yield _sse(_chat_chunk(head, [], _usage(completions)))


def _chat_chunk(head: _Head, choices: list[ChatChunkChoice], usage: Usage | None = None
                ) -> ChatCompletionChunk:
    out: ChatCompletionChunk = {"id": head.id, "created": head.created, "model": head.model,
                                "system_fingerprint": None, "object": "chat.completion.chunk",
                                "choices": choices}
    if usage is not None:
        out["usage"] = usage
    return out


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


def _chat_logprobs(c: Completion) -> ChoiceLogprobs | None:
    if c.logprobs is None:
        return None

    def entry(text: str, value: float) -> TopLogprob:
        return {"token": text, "logprob": value, "bytes": list(text.encode())}

    return {"content": [{**entry(lp.text, lp.logprob),
                         "top_logprobs": [entry(t, v) for _, t, v in lp.top]}
                        for lp in c.logprobs], "refusal": None}


# -- completions -------------------------------------------------------------------------------

@router.post("/v1/completions", response_model=TextCompletion,
             responses=sse_responses("text_completion"))
async def completions(body: CompletionRequest, request: Request, service: LLMDep
                      ) -> TextCompletion | Response:
    check_model(body.model, service.name, "language")
    prompt = _prompt(body)
    if body.suffix:
        raise invalid("suffix (fill-in-the-middle) is not supported", "suffix")
    options: dict[str, Any] = {}
    if (schema := response_schema(body.response_format)) is not None:
        options["grammar"] = grammar(schema, "response_format")
    if body.logprobs is not None:
        options["logprobs"] = body.logprobs
    engine = service.engine
    runs = Generations.start(engine, body, lambda **kw: engine.submit(prompt, **kw),
                             max_tokens=body.max_tokens, prompt_param="prompt", **options)
    echo = ""
    if body.echo:
        echo = prompt if isinstance(prompt, str) else engine.llm.detokenize(prompt)
    head = _Head.new("cmpl", service.name)
    if body.stream:
        return _event_stream(_text_chunks(runs, request, head, echo, usage=_usage_asked(body)),
                             runs)
    results = await runs.results(request)
    if results is None:
        return Response(status_code=499)  # the client left
    choices: list[TextChoice] = [
        {"index": i, "text": echo + c.text, "logprobs": _text_logprobs(c),
         "finish_reason": _finish(c.finish_reason)} for i, c in enumerate(results)]
    return {"id": head.id, "object": "text_completion", "created": head.created,
            "model": head.model, "system_fingerprint": None, "choices": choices,
            "usage": _usage(results)}


async def _text_chunks(runs: Generations, request: Request, head: _Head, echo: str, *,
                       usage: bool) -> AsyncIterator[bytes]:
    """The completion's events: the echoed prompt, each choice's text pieces, its end; the
    usage last (``usage``)."""
    sent: list[Completion] = []
    if echo:
        for i in range(runs.n):
            yield _sse(_text_chunk(head, [{"index": i, "text": echo, "logprobs": None,
                                           "finish_reason": None}]))
    async for index, event in runs.events(request):
        if isinstance(event, str):
            yield _sse(_text_chunk(head, [{"index": index, "text": event, "logprobs": None,
                                           "finish_reason": None}]))
        elif isinstance(event, BaseException):
            yield _sse(failure(event).body())
            return
        else:
            sent.append(event)
            yield _sse(_text_chunk(head, [{"index": index, "text": "",
                                           "logprobs": _text_logprobs(event),
                                           "finish_reason": _finish(event.finish_reason)}]))
    if usage and sent:
        yield _sse(_text_chunk(head, [], _usage(sent)))


def _text_chunk(head: _Head, choices: list[TextChunkChoice], usage: Usage | None = None
                ) -> TextCompletionChunk:
    out: TextCompletionChunk = {"id": head.id, "object": "text_completion",
                                "created": head.created, "model": head.model,
                                "system_fingerprint": None, "choices": choices}
    if usage is not None:
        out["usage"] = usage
    return out


def _prompt(body: CompletionRequest) -> str | list[int]:
    """The one prompt of a completion request: text or token ids."""
    p = body.prompt
    if isinstance(p, list) and p and isinstance(p[0], str):
        if len(p) != 1:
            raise invalid("one prompt per request (send several requests: they are batched)",
                          "prompt")
        return p[0]
    return cast("str | list[int]", p)


def _text_logprobs(c: Completion) -> TextLogprobs | None:
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


# -- embeddings --------------------------------------------------------------------------------

@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, service: LLMDep) -> EmbeddingList:
    check_model(body.model, service.name, "language")
    model = service.engine.llm
    raw = body.input
    if isinstance(raw, str):
        texts = [raw]
    elif raw and isinstance(raw[0], int):
        texts = [model.detokenize(raw)]
    elif raw and isinstance(raw[0], list):
        texts = [model.detokenize(t) for t in raw]
    else:
        texts = list(cast("list[str]", raw))
    for i, t in enumerate(texts):
        if not t:
            raise invalid(f"input[{i}] is empty", "input")
    vectors = await run_in_threadpool(service.embed, texts)
    if body.dimensions is not None:
        if body.dimensions > vectors.shape[1]:
            raise invalid(f"dimensions must be at most {vectors.shape[1]}", "dimensions")
        vectors = vectors[:, :body.dimensions]
    data: list[Embedding] = []
    for i, v in enumerate(vectors):
        emb: list[float] | str = (base64.b64encode(v.astype("<f4").tobytes()).decode()
                                  if body.encoding_format == "base64" else v.tolist())
        data.append({"object": "embedding", "index": i, "embedding": emb})
    n_tokens = sum(len(model.tokenize(t)) for t in texts)
    return {"object": "list", "data": data, "model": service.name,
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}


# -- shared ------------------------------------------------------------------------------------

def _finish(reason: FinishReason) -> TextFinish:
    return "length" if reason == "length" else "stop"


def _usage(completions: list[Completion]) -> Usage:
    prompt = completions[0].usage.prompt_tokens if completions else 0
    cached = sum(c.usage.cached_tokens for c in completions) // max(len(completions), 1)
    generated = sum(c.usage.completion_tokens for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": generated,
            "total_tokens": prompt + generated, "prompt_tokens_details": {"cached_tokens": cached}}


def _sse(data: Mapping[str, Any]) -> bytes:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _usage_asked(body: ChatCompletionRequest | CompletionRequest) -> bool:
    """Whether a streamed request asked for a last chunk with the usage."""
    return body.stream_options is not None and body.stream_options.include_usage


def _event_stream(chunks: AsyncIterator[bytes], runs: Generations) -> StreamingResponse:
    """The streamed response of ``chunks``, ended by ``data: [DONE]``."""
    return StreamingResponse(_events(chunks, runs), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


async def _events(chunks: AsyncIterator[bytes], runs: Generations) -> AsyncIterator[bytes]:
    try:
        async for chunk in chunks:
            yield chunk
        yield b"data: [DONE]\n\n"
    finally:  # the client went away (or the stream ended): free the sequences
        runs.cancel()
