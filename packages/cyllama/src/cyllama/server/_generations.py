"""The ``n`` generations of one chat or text completion request: what the request asks of the
:class:`Engine` (sampling, grammar, limits), submitting them, and their events brought from the
engine's thread to the asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request

from .. import ContextOverflowError, Engine, EngineRequest, Grammar, Sampling
from .._types import Completion
from ._errors import APIError, invalid
from ._schemas import CompletionBase, ResponseFormat

#: Engine.submit or submit_chat with the prompt given: takes the generation's options.
Submit = Callable[..., EngineRequest]


def sampling(body: CompletionBase, index: int) -> Sampling:
    """The sampling of the request's ``index``-th generation (its seed: ``seed + index``)."""
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


def response_schema(fmt: ResponseFormat | None) -> Any:
    """The JSON schema a response_format asks for (None: free text)."""
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "object"}
    if fmt.json_schema is None:
        raise invalid("response_format of type json_schema needs a json_schema",
                      "response_format.json_schema")
    return fmt.json_schema.schema_ or {"type": "object"}


def grammar(schema: Any, param: str) -> Grammar:
    """The grammar of a JSON schema; an invalid schema is a 400 naming ``param``."""
    try:
        return Grammar.from_json_schema(schema)
    except (ValueError, TypeError) as e:
        raise invalid(f"invalid JSON schema: {e}", param) from e


def failure(event: BaseException) -> APIError:
    """The 500 of a generation that failed inside the model."""
    return APIError(500, f"generation failed: {type(event).__name__}: {event}")


class Generations:
    """The ``n`` generations of one API request (made by :meth:`start`, in the event loop)."""

    def __init__(self, n: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self.requests: list[EngineRequest] = []
        self.n = n

    @classmethod
    def start(cls, engine: Engine, body: CompletionBase, submit: Submit, *,
              max_tokens: int | None, prompt_param: str, **options: Any) -> Generations:
        """Submit ``body.n`` generations with ``options`` (and the body's sampling, stop
        strings and ``max_tokens``). A prompt too long for the context is a 400
        ``context_length_exceeded`` naming ``prompt_param``; other bad arguments are 400s."""
        runs = cls(body.n)
        # No limit given: until the model stops or the sequence's window is full (as
        # llama-server).
        options["max_tokens"] = engine.n_ctx if max_tokens is None else max_tokens
        if body.stop is not None:
            options["stop"] = body.stop
        try:
            for i in range(body.n):
                runs.requests.append(submit(sampling=sampling(body, i),
                                            on_event=runs._listener(i), **options))
        except Exception as e:
            runs.cancel()
            if isinstance(e, ContextOverflowError):
                raise invalid(str(e), prompt_param, "context_length_exceeded") from e
            if isinstance(e, (ValueError, TypeError)):
                raise invalid(str(e)) from e
            raise
        return runs

    def _listener(self, index: int) -> Callable[[Any], None]:
        def on_event(event: Any) -> None:  # on the engine's thread
            # RuntimeError: the loop is gone (shutdown), nobody listens any more.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.queue.put_nowait, (index, event))
        return on_event

    def cancel(self) -> None:
        """Cancel every generation still running (their sequences are freed)."""
        for r in self.requests:
            r.cancel()

    async def results(self, request: Request) -> list[Completion] | None:
        """Every generation's Completion, in choice order; None if the client left. A failure
        inside the model cancels the others and is a 500."""
        done: list[Completion | None] = [None] * self.n
        async for index, event in self.events(request):
            if isinstance(event, BaseException):
                self.cancel()
                raise failure(event) from event
            if isinstance(event, Completion):
                done[index] = event
        if any(c is None for c in done):
            return None
        return [c for c in done if c is not None]

    async def events(self, request: Request) -> AsyncIterator[tuple[int, Any]]:
        """(choice index, event) until every generation ended: text pieces (str), then its
        Completion or exception. A client that disconnects cancels them (checked every 0.2 s
        while nothing comes)."""
        left = self.n
        while left:
            try:
                index, event = await asyncio.wait_for(self.queue.get(), 0.2)
            except asyncio.TimeoutError:  # (not yet the builtin TimeoutError on 3.10)
                if await request.is_disconnected():
                    self.cancel()
                    return
                continue
            if not isinstance(event, str):
                left -= 1
            yield index, event
