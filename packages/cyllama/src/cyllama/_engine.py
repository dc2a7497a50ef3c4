"""Continuous batching: many generations share one context, decoded together step by step."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ggml_family.checks import check_int

from . import _core
from ._chat import Message
from ._text import Job, TextOut, common_prefix, token_logprob
from ._types import Completion, FinishReason, GenerateOptions, TokenLogprob

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._llm import LLM

__all__ = ["Engine", "EngineClosedError", "EngineRequest"]

log = logging.getLogger("cyllama.engine")

#: What an EngineRequest reports: a text piece, then its Completion, or the error that ended it.
Event = str | Completion | BaseException


class EngineClosedError(RuntimeError):
    """The engine was closed before the request could finish."""


class EngineRequest:
    """One generation submitted to an :class:`Engine`.

    Iterate it for its text pieces as they are produced (as :meth:`LLM.stream` gives them), or
    call :meth:`result` for the :class:`Completion`. :meth:`cancel` frees its sequence at the
    next decode step; its result then has ``finish_reason == "cancelled"``.

    With ``on_event`` (see :meth:`Engine.submit`) the events go to that callable instead,
    from the engine's thread: each text piece (str), then the Completion or the exception.
    """

    _ids = itertools.count(1)

    def __init__(self, job: Job, on_event: Callable[[Event], None] | None) -> None:
        self.id = next(EngineRequest._ids)
        self.job = job
        self._on_event = on_event
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._cancelled = threading.Event()
        self._done = threading.Event()
        self._completion: Completion | None = None
        self._error: BaseException | None = None

    @property
    def prompt_tokens(self) -> int:
        """How many tokens the prompt has."""
        return len(self.job.tokens)

    def cancel(self) -> None:
        """Stop generating; the sequence is freed within one decode step."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled.is_set()

    @property
    def done(self) -> bool:
        """Whether the request has ended (its Completion or error is there)."""
        return self._done.is_set()

    def _emit(self, event: Event) -> None:
        if isinstance(event, Completion):
            self._completion = event
        elif isinstance(event, BaseException):
            self._error = event
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:  # the listener is broken or gone: nobody wants the rest
                log.exception("the on_event callable of request %d failed; cancelling it",
                              self.id)
                self._cancelled.set()
        else:
            self._events.put(event)
        if not isinstance(event, str):
            self._done.set()

    def __iter__(self) -> Iterator[str]:
        if self._on_event is not None:
            raise RuntimeError("this request reports to its on_event callable")
        while True:
            event = self._events.get()
            if isinstance(event, str):
                yield event
            elif isinstance(event, BaseException):
                raise event
            else:
                return

    def result(self, timeout: float | None = None) -> Completion:
        """Wait for the end of generation; the :class:`Completion` (or raise its error)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"request {self.id} did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._completion is not None
        return self._completion

    def __repr__(self) -> str:
        state = "done" if self.done else "cancelled" if self.cancelled else "running"
        return f"<EngineRequest {self.id} {state}, {self.prompt_tokens} prompt tokens>"


class _Slot:
    """One sequence of the shared cache and the request it serves."""

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.cached: list[int] = []  # tokens in the cache for this sequence, in order
        self.last_used = 0
        self.req: EngineRequest | None = None
        self.todo: list[int] = []  # prompt tokens still to evaluate
        self.next: int | None = None  # the sampled token to evaluate at the next step
        self.out: TextOut | None = None
        self.lps: list[TokenLogprob] | None = None
        self.reused = 0
        self.sampled = 0
        self.t0 = self.t1 = 0.0


class Engine:
    """Continuous batching over one :class:`LLM`'s weights.

    >>> engine = cyllama.Engine(llm, n_parallel=8)
    >>> texts = [c.text for c in engine.generate_batch(["Once", "The sky"], max_tokens=32)]
    >>> req = engine.submit("Tell me", max_tokens=64)   # from any thread
    >>> for piece in req: print(piece, end="")

    Up to ``n_parallel`` generations share one context (and KV cache) of their own, apart from
    the LLM's. A thread of the engine decodes them together, one token of each per step, with
    waiting prompts evaluated in the same steps (up to ``n_batch`` tokens per step); a new
    request joins between two steps, and each has its own sampler chain, grammar, stop strings
    and ``max_tokens``. When a request ends, its sequence's cache is kept: a later prompt that
    starts with the same tokens (the next turn of a chat) goes to that sequence and only its
    new tokens are evaluated.

    Greedy results equal :meth:`LLM.generate`'s for the same prompt up to float rounding:
    batched matrix products may sum in another order, so near-tied tokens can differ.

    Parameters:
        llm: the model (its weights are shared; its own context is not used).
        n_parallel: how many sequences are decoded together.
        n_ctx: the context window of each sequence (default: the LLM's ``n_ctx``); the shared
            cache holds ``n_parallel * n_ctx`` tokens.
        n_batch: the most tokens evaluated in one step (default: the LLM's).

    Submitting is thread-safe; :meth:`close` (or the ``with`` block's end) stops the thread.
    """

    def __init__(self, llm: LLM, *, n_parallel: int = 4, n_ctx: int | None = None,
                 n_batch: int | None = None) -> None:
        self.llm = llm
        self._model = llm.model  # the weights, tokenizer and seed generator, shared
        self.n_parallel = check_int("n_parallel", n_parallel, 1, 256)
        self.n_ctx = check_int("n_ctx", llm.n_ctx if n_ctx is None else n_ctx, 8,
                               (2**32 - 1) // self.n_parallel)
        n_batch = check_int("n_batch", llm.n_batch if n_batch is None else n_batch, 1)
        self._ctx = self._model.context(self.n_ctx * self.n_parallel, n_batch, min(n_batch, 512),
                                        llm.n_threads, llm.n_threads_batch, self.n_parallel,
                                        "n_ctx per sequence x n_parallel")
        self.n_batch = int(self._ctx.n_batch)
        self._slots = [_Slot(i) for i in range(self.n_parallel)]
        self._waiting: deque[EngineRequest] = deque()
        self._cond = threading.Condition()
        self._submit_lock = threading.Lock()  # the model's tokenizer and seed generator
        self._closed = False
        self._clock = itertools.count()
        self._steps = 0
        self._thread = threading.Thread(target=self._loop, name="cyllama-engine", daemon=True)
        self._thread.start()

    # -- submitting -------------------------------------------------------------------------

    def submit(self, prompt: str | Sequence[int], *,
               on_event: Callable[[Event], None] | None = None,
               **options: Unpack[GenerateOptions]) -> EngineRequest:
        """Queue a generation (:meth:`LLM.generate`'s ``prompt`` and options); returns at once.

        Every mistake in the arguments raises here. ``on_event``: a callable the engine's
        thread gives each event to (text pieces, then the Completion or the exception), for
        a caller that is not a thread of its own (an asyncio loop, through
        ``call_soon_threadsafe``); it must not block.
        """
        with self._submit_lock:
            job = self._model.job(prompt, options, 128, self.n_ctx)
        return self._enqueue(job, on_event)

    def submit_chat(self, messages: Sequence[Message], *, template: str | None = None,
                    on_event: Callable[[Event], None] | None = None,
                    **options: Unpack[GenerateOptions]) -> EngineRequest:
        """Queue :meth:`LLM.chat`'s generation for ``messages`` (``max_tokens`` 512 by default)."""
        with self._submit_lock:
            prompt = self._model.render_chat(messages, template)
            job = self._model.job(prompt, options, 512, self.n_ctx, special=True)
        return self._enqueue(job, on_event)

    def generate_batch(self, prompts: Sequence[str | Sequence[int]],
                       **options: Unpack[GenerateOptions]) -> list[Completion]:
        """Generate for every prompt (with the same options), decoded together; the
        Completions in the prompts' order."""
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of prompts, not one str")
        with self._submit_lock:
            jobs = [self._model.job(p, options, 128, self.n_ctx) for p in prompts]
        reqs = [self._enqueue(job, None) for job in jobs]
        try:
            return [r.result() for r in reqs]
        finally:
            for r in reqs:
                r.cancel()

    def _enqueue(self, job: Job, on_event: Callable[[Event], None] | None) -> EngineRequest:
        req = EngineRequest(job, on_event)
        with self._cond:
            if self._closed:
                raise EngineClosedError("the engine is closed")
            self._waiting.append(req)
            self._cond.notify()
        return req

    # -- state ------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Sequences busy, requests waiting, decode steps so far, and cached tokens per slot."""
        with self._cond:
            return {"n_parallel": self.n_parallel, "n_ctx": self.n_ctx,
                    "busy": sum(s.req is not None for s in self._slots),
                    "waiting": len(self._waiting), "steps": self._steps,
                    "cached_tokens": [len(s.cached) for s in self._slots]}

    def close(self) -> None:
        """Stop the engine: waiting and running requests end with EngineClosedError."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Engine({self.llm!r}, n_parallel={self.n_parallel}, n_ctx={self.n_ctx})"

    # -- the engine's thread ----------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and not self._waiting and not self._busy():
                    self._cond.wait()
                if self._closed:
                    break
                self._admit()
            try:
                self._step()
            except Exception as e:  # a bug of ours: fail what ran, keep serving
                for s in self._slots:
                    if s.req is not None:
                        self._fail(s, e)
        error = EngineClosedError("the engine was closed")
        with self._cond:
            waiting, self._waiting = list(self._waiting), deque()
        for req in waiting:
            req._emit(error)
        for s in self._slots:
            if s.req is not None:
                s.req._emit(error)
                s.req = None
        self._ctx = None  # freed in this thread

    def _busy(self) -> bool:
        return any(s.req is not None for s in self._slots)

    def _admit(self) -> None:
        """Give the first waiting requests the free slots (called with the lock held).

        The requests admitted now are matched to the free slots whose cache shares the most
        with their prompt, longest shares first, when the share is at least a tenth of the
        prompt (as llama-server's slot similarity) and half of the slot's cache (a short
        prompt that only shares the BOS does not evict a conversation); the rest take the
        least recently used free slots.
        """
        while self._waiting and self._waiting[0].cancelled:
            req = self._waiting.popleft()
            req._emit(self._cancelled_completion(req))
        free = [s for s in self._slots if s.req is None]
        batch = [r for r in itertools.islice(self._waiting, len(free)) if not r.cancelled]
        chosen: dict[int, _Slot] = {}
        pairs = sorted(((common_prefix(s.cached, r.job.tokens), r, s) for r in batch for s in free),
                       key=lambda p: -p[0])
        for common, req, slot in pairs:  # the longest shared prefixes first
            useful = common * 10 >= len(req.job.tokens) and common * 2 >= len(slot.cached)
            if useful and req.id not in chosen and slot not in chosen.values():
                chosen[req.id] = slot
        for req in batch:
            if req.id not in chosen:
                rest = [s for s in free if s not in chosen.values()]
                chosen[req.id] = min(rest, key=lambda s: s.last_used)
        for _ in range(len(free)):
            if not self._waiting:
                break
            req = self._waiting.popleft()
            if req.id not in chosen:  # cancelled meanwhile
                req._emit(self._cancelled_completion(req))
                continue
            self._start(chosen[req.id], req)

    def _start(self, slot: _Slot, req: EngineRequest) -> None:
        tokens = req.job.tokens
        keep = min(common_prefix(slot.cached, tokens), len(tokens) - 1)
        self._ctx.seq_rm(slot.seq, keep, -1)
        del slot.cached[keep:]
        slot.req, slot.todo, slot.next, slot.reused = req, tokens[keep:], None, keep
        slot.out = self._model.text_out(req.job.stops)
        slot.lps = [] if req.job.n_logprobs is not None else None
        slot.sampled = 0
        slot.t0 = time.perf_counter()
        if history := req.job.history():
            req.job.sampler.accept_many(history)

    def _step(self) -> None:
        """One decode: a token of every generating sequence, then prompt chunks in the order
        the requests came, up to n_batch tokens; then sample each sequence that has logits."""
        for s in self._slots:
            if s.req is not None and s.req.cancelled:
                self._finish(s, "cancelled")
        chunks: list[tuple[int, list[int], int, bool]] = []
        owners: list[_Slot] = []
        budget = self.n_batch
        for s in self._slots:
            if s.req is not None and s.next is not None:
                chunks.append((s.seq, [s.next], len(s.cached), True))
                owners.append(s)
                budget -= 1
        prefilling = sorted((s for s in self._slots if s.req is not None and s.todo),
                            key=lambda s: s.req.id if s.req else 0)
        for s in prefilling:
            if budget <= 0:
                break
            part = s.todo[:budget]
            chunks.append((s.seq, part, len(s.cached), len(part) == len(s.todo)))
            owners.append(s)
            budget -= len(part)
        if not chunks:
            return
        try:
            rows = self._ctx.decode_seqs(chunks)
        except Exception as e:
            if len(chunks) == 1:
                self._drop(owners[0], e)
                return
            # Find the culprit: each chunk alone (the others then still get their token).
            for s, chunk in zip(owners, chunks, strict=True):
                try:
                    row = self._ctx.decode_seqs([chunk])
                except Exception as e1:
                    self._drop(s, e1)
                else:
                    self._after([s], [chunk], row)
            return
        self._after(owners, chunks, rows)

    def _drop(self, s: _Slot, error: BaseException) -> None:
        """A sequence whose decode failed: its cache is unknown, so emptied."""
        self._ctx.seq_rm(s.seq, 0, -1)
        s.cached.clear()
        self._fail(s, error)

    def _after(self, owners: list[_Slot], chunks: list[tuple[int, list[int], int, bool]],
               rows: list[int]) -> None:
        """Book the decoded chunks into their slots and sample where logits came."""
        self._steps += 1
        now = time.perf_counter()
        for s, (_, tokens, _, _), row in zip(owners, chunks, rows, strict=True):
            s.cached.extend(tokens)
            if s.next is not None:
                s.next = None
            else:
                del s.todo[:len(tokens)]
                if not s.todo:
                    s.t1 = now
            if row >= 0:
                try:
                    self._sample(s, row)
                except Exception as e:  # a grammar with no way on, ...
                    self._fail(s, e)

    def _sample(self, s: _Slot, row: int) -> None:
        req, out = s.req, s.out
        assert req is not None and out is not None
        job = req.job
        if len(out.tokens) >= job.max_tokens:  # max_tokens=0: the prompt only
            self._finish(s, "length")
            return
        token = job.sampler.sample(self._ctx, row)
        s.sampled += 1
        if self._model.is_eog(token):
            self._finish(s, "eos")
            return
        job.sampler.accept(token)
        if s.lps is not None:
            s.lps.append(token_logprob(_core, self._ctx, token, job.n_logprobs or 0, row,
                                       self._model.piece_text))
        if out.push(token):
            self._finish(s, "stop")
            return
        if piece := out.take():
            req._emit(piece)
        if len(out.tokens) >= job.max_tokens or len(s.cached) >= self.n_ctx:
            self._finish(s, "length")
        else:
            s.next = token

    def _finish(self, s: _Slot, finish: FinishReason) -> None:
        req, out = s.req, s.out
        assert req is not None and out is not None
        if rest := out.close():
            req._emit(rest)
        t2 = time.perf_counter()
        t1 = s.t1 if not s.todo else t2
        req._emit(out.completion(
            finish, prompt_tokens=len(req.job.tokens), cached_tokens=s.reused,
            prompt_ms=(t1 - s.t0) * 1000, generation_ms=(t2 - t1) * 1000, sampled=s.sampled,
            logprobs=s.lps))
        self._release(s)

    def _fail(self, s: _Slot, error: BaseException) -> None:
        assert s.req is not None
        s.req._emit(error)
        self._release(s)

    def _release(self, s: _Slot) -> None:
        s.req, s.out, s.lps, s.next = None, None, None, None
        s.todo = []
        s.last_used = next(self._clock)

    def _cancelled_completion(self, req: EngineRequest) -> Completion:
        return self._model.text_out(()).completion(
            "cancelled", prompt_tokens=len(req.job.tokens), cached_tokens=0,
            prompt_ms=0.0, generation_ms=0.0, sampled=0, logprobs=None)
