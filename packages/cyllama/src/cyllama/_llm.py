"""The LLM class: load a GGUF model; generate, stream, chat, embed; LoRA and saved states."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar

from ggml_family.checks import check_float, check_int, check_threads

from . import _core
from ._chat import Message
from ._errors import ContextOverflowError, ModelLoadError
from ._model import LoadedModel, check_gguf
from ._text import Job, common_prefix, token_logprob
from ._types import (
    Completion,
    FinishReason,
    GenerateOptions,
    LoraAdapter,
    State,
    Stream,
    TokenLogprob,
)

if TYPE_CHECKING:
    import numpy as np
    from typing_extensions import Unpack  # typing.Unpack from 3.11 on

__all__ = ["LLM"]

_POOLING = {"mean": 1, "cls": 2, "last": 3}

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _serialised(method: Callable[Concatenate[LLM, _P], _R]
                ) -> Callable[Concatenate[LLM, _P], _R]:
    """Run the method with the LLM's lock held: calls from other threads wait their turn."""
    @functools.wraps(method)
    def run(llm: LLM, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with llm._lock:
            return method(llm, *args, **kwargs)
    return run


def _drain(gen: Generator[str, None, Completion]) -> Completion:
    """Run a generation to its end; its return value."""
    while True:
        try:
            next(gen)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]


class LLM:
    """A llama.cpp model with one inference context.

    >>> llm = LLM("gemma-3-270m-q4_k_m.gguf", n_ctx=2048)
    >>> llm.generate("The capital of France is", max_tokens=8).text
    >>> for piece in llm.chat_stream([{"role": "user", "content": "Hi!"}]):
    ...     print(piece, end="")

    Calls from several threads are serialised (each waits for the one running); a stream
    holds the LLM only while it computes a piece, and raises if another call used the LLM in
    between. For many concurrent generations use an :class:`Engine`.

    Parameters:
        path: a GGUF model file.
        n_ctx: context window in tokens; 0 takes the model's training context.
        n_threads: CPU threads for generation (default: all cores).
        n_threads_batch: CPU threads for prompt processing (default: ``n_threads``).
        n_batch: the most tokens evaluated per call while processing a prompt.
        n_ubatch: physical batch size (default: ``min(n_batch, 512)``).
        seed: seeds the generator that gives each sampled generation its seed (unless the
            :class:`Sampling` sets one); greedy decoding ignores it.
        n_gpu_layers: layers to offload to GPU devices; -1 all of them, 0 none. The default
            offloads everything when a GPU plugin registered a device (or ``rpc`` is given),
            and nothing otherwise. Asking for layers when no GPU device is registered raises
            BackendError.
        use_mmap: map the file instead of reading it into memory.
        rpc: RPC servers (``"host:port"``, each ``python -m ggml_family rpc-server``) whose
            devices take offloaded layers, before the local GPUs: with ``n_gpu_layers=-1``
            every layer is remote; with fewer, the first layers stay on this CPU.
            :meth:`layer_devices` shows the split. The servers must run the same ggml build;
            an unreachable one, or one of another protocol version, raises BackendError; a
            server that goes away during a call raises ComputeError.
        repack: let layers on this CPU use ggml's repacked weight layouts (AMX tiles,
            interleaved quantized blocks) where the CPU has them: faster, but they round
            floats differently from the plain kernels that GPUs' and RPC servers' CPUs run.
            ``repack=False`` gives the same numbers as an RPC server's CPU.

    The model's KV cache is kept between calls: a prompt that starts with the tokens of the
    previous call only evaluates what is new.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        n_batch: int = 512,
        n_ubatch: int | None = None,
        seed: int = 0,
        n_gpu_layers: int | None = None,
        use_mmap: bool = True,
        rpc: Sequence[str] | None = None,
        repack: bool = True,
    ) -> None:
        self.n_threads = check_threads("n_threads", n_threads)
        self.n_threads_batch = check_threads(
            "n_threads_batch", self.n_threads if n_threads_batch is None else n_threads_batch)
        check_int("n_ctx", n_ctx, 0, 2**32 - 1)
        check_int("n_batch", n_batch, 1)
        check_int("n_ubatch", n_batch if n_ubatch is None else n_ubatch, 1, n_batch)
        self.seed = check_int("seed", seed, 0, 2**32 - 1)
        #: The loaded model: weights, tokenizer, chat template (an :class:`Engine` shares it).
        self.model = LoadedModel(path, n_gpu_layers=n_gpu_layers, use_mmap=use_mmap, rpc=rpc,
                                 repack=repack, seed=self.seed)
        self.path = self.model.path
        #: The RPC servers' devices, by endpoint (``rpc=``).
        self.rpc = self.model.rpc
        self.n_gpu_layers = self.model.n_gpu_layers
        what = None
        if n_ctx == 0:
            n_ctx = self.model.core.n_ctx_train
            if n_ctx <= 0:  # a uint32 in the file, read as int32 by llama.cpp's API
                raise ModelLoadError(f"n_ctx=0 takes the model's training context, but {self.path} "
                                     f"says {n_ctx} tokens; give n_ctx")
            what = "the model's training context (n_ctx=0)"
        self._ctx = self.model.context(n_ctx, n_batch, n_ubatch or 0, self.n_threads,
                                       self.n_threads_batch, what=what)
        self._cached: list[int] = []  # the tokens in the KV cache, in order
        self._epoch = 0  # bumped by every call that changes the cache (invalidates streams)
        self._embedders: dict[str, Any] = {}
        self._loras: list[LoraAdapter] = []
        # Every call that touches the context holds it: one LLM used from several threads
        # serialises their calls instead of running two decodes on one KV cache.
        self._lock = threading.RLock()

    # -- model facts ------------------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        """Context window in tokens."""
        return int(self._ctx.n_ctx)

    @property
    def n_batch(self) -> int:
        """The most tokens evaluated per call while processing a prompt."""
        return int(self._ctx.n_batch)

    @property
    def n_vocab(self) -> int:
        """Vocabulary size."""
        return self.model.n_vocab

    @property
    def metadata(self) -> dict[str, str]:
        """The model's GGUF metadata (values as strings)."""
        return dict(self.model.core.metadata())

    @property
    def layer_devices(self) -> dict[str, int]:
        """How many layers (the output layer counted as one) run on each device."""
        counts: dict[str, int] = {}
        for dev in self.model.core.layer_devices():
            counts[dev] = counts.get(dev, 0) + 1
        return counts

    @property
    def description(self) -> str:
        """llama.cpp's one-line description (architecture, size, quantisation)."""
        return str(self.model.core.description)

    # -- tokens -----------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = False
                 ) -> list[int]:
        """Token ids of ``text``; ``add_special`` adds BOS (or what the model asks for)."""
        return self.model.tokenize(text, add_special, parse_special)

    def detokenize(self, tokens: Sequence[int], *, special: bool = False) -> str:
        """Text of token ids, the inverse of :meth:`tokenize`.

        A leading BOS is dropped (``special=True`` keeps it and renders control tokens), and
        so is the space a SentencePiece vocabulary puts in front of the first word, so that
        ``detokenize(tokenize(text)) == text``.
        """
        return self.model.detokenize(tokens, special)

    # -- generation -------------------------------------------------------------------------

    def _prefill(self, tokens: list[int]) -> int:
        """Make the KV cache hold ``tokens`` with logits for the last one, reusing a prefix.

        Returns how many tokens were reused from the cache.
        """
        keep = common_prefix(self._cached, tokens)
        if keep == len(tokens):
            keep -= 1  # the last token must be evaluated again to get its logits
        self._ctx.truncate(keep)
        del self._cached[keep:]
        self._ctx.decode(tokens[keep:])
        self._cached.extend(tokens[keep:])
        return keep

    @_serialised
    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens`` into the KV cache (reusing a cached prefix), as for a prompt."""
        toks = [int(t) for t in tokens]
        if not toks:
            raise ValueError("eval() needs at least one token")
        if len(toks) > self.n_ctx:
            raise ContextOverflowError(
                f"{len(toks)} tokens do not fit the context window (n_ctx) of {self.n_ctx}")
        self._epoch += 1
        self._prefill(toks)

    @_serialised
    def reset(self) -> None:
        """Empty the KV cache; the next prompt is evaluated from scratch."""
        self._epoch += 1
        self._ctx.truncate(0)
        self._cached.clear()

    def _locked(self, gen: Generator[str, None, Completion]) -> Generator[str, None, Completion]:
        """A stream whose every step runs with the lock held; between steps other threads'
        calls may run (the stream then raises, as for a call from its own thread)."""
        try:
            while True:
                with self._lock:
                    try:
                        piece = next(gen)
                    except StopIteration as done:
                        return done.value  # type: ignore[no-any-return]
                yield piece
        finally:
            with self._lock:
                gen.close()

    def _start(self, prompt: str | Sequence[int], options: GenerateOptions, max_tokens: int,
               special: bool = False) -> Generator[str, None, Completion]:
        """Validate everything up front (errors raise at the call, not at the first next())."""
        job = self.model.job(prompt, options, max_tokens, self.n_ctx, special)
        self._epoch += 1
        return self._run(job, self._epoch)

    def _run(self, job: Job, epoch: int) -> Generator[str, None, Completion]:
        ctx, model, cached, sampler = self._ctx, self.model, self._cached, job.sampler
        t0 = time.perf_counter()
        reused = self._prefill(job.tokens)
        t1 = time.perf_counter()
        if history := job.history():
            sampler.accept_many(history)
        out = model.text_out(job.stops)
        lps: list[TokenLogprob] | None = [] if job.n_logprobs is not None else None
        finish: FinishReason = "length"
        sampled = 0
        n_ctx = self.n_ctx
        while len(out.tokens) < job.max_tokens:
            token = sampler.sample(ctx)
            sampled += 1
            if model.is_eog(token):
                finish = "eos"
                break
            sampler.accept(token)
            if lps is not None:
                lps.append(token_logprob(_core, ctx, token, job.n_logprobs or 0, -1,
                                         model.piece_text))
            if out.push(token):
                finish = "stop"
                break
            if piece := out.take():
                yield piece
            if self._epoch != epoch:
                raise RuntimeError("this generation was interrupted by another call on the same "
                                   "LLM; a stream must be consumed before the next call")
            if len(out.tokens) >= job.max_tokens or ctx.n_past >= n_ctx:
                break
            ctx.decode([token])
            cached.append(token)
        if rest := out.close():
            yield rest
        t2 = time.perf_counter()
        return out.completion(finish, prompt_tokens=len(job.tokens), cached_tokens=reused,
                              prompt_ms=(t1 - t0) * 1000, generation_ms=(t2 - t1) * 1000,
                              sampled=sampled, logprobs=lps)

    @_serialised
    def generate(self, prompt: str | Sequence[int], **options: Unpack[GenerateOptions]
                 ) -> Completion:
        """Continue ``prompt`` (text, or token ids) and return the :class:`Completion`.

        ``options`` (:class:`GenerateOptions`): ``max_tokens`` (default 128), ``sampling``
        (default greedy), ``stop``, ``logprobs``, ``grammar``, ``json_schema``.

        Generation also stops at an end-of-generation token, or when the context window is
        full. The KV cache keeps the prompt and the generated tokens: a next prompt that
        starts with them only evaluates what is new.
        """
        return _drain(self._start(prompt, options, 128))

    def stream(self, prompt: str | Sequence[int], **options: Unpack[GenerateOptions]) -> Stream:
        """Like :meth:`generate`, as a :class:`Stream` of text pieces while they are produced.

        Pieces are whole UTF-8 characters (a character split over tokens comes out once
        complete) and never show a stop string; their join equals ``generate()``'s text for
        the same arguments and seed. Break out of the loop to cancel.
        """
        with self._lock:
            return Stream(self._locked(self._start(prompt, options, 128)))

    # -- chat -------------------------------------------------------------------------------

    @property
    def chat_template(self) -> str:
        """The chat template :meth:`chat` uses by default.

        The model's own (Jinja text from ``tokenizer.chat_template`` in its GGUF metadata); for
        a file without one, the built-in format of its architecture's family (``"gemma"`` for
        Gemma models, ...), else ``"chatml"``, llama.cpp's own fallback.
        """
        return self.model.chat_template

    def apply_chat_template(self, messages: Sequence[Message], *, template: str | None = None,
                            add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages`` (dicts with ``role`` and ``content``).

        ``template`` overrides :attr:`chat_template`: the name of one of llama.cpp's built-in
        formats (``cyllama.chat_templates()``), or a Jinja template (rendered by llama.cpp when
        it recognises the format, else by the ``jinja2`` package if installed).
        """
        return self.model.render_chat(messages, template, add_generation_prompt)

    @_serialised
    def chat(self, messages: Sequence[Message], *, template: str | None = None,
             **options: Unpack[GenerateOptions]) -> Completion:
        """The assistant's reply to ``messages`` under the model's chat template.

        For a multi-turn conversation pass the whole history each time (with the previous
        replies as ``{"role": "assistant", ...}``): the shared prefix is still in the KV cache,
        so only the new turn is evaluated (see ``Completion.usage.cached_tokens``).
        ``options`` are :meth:`generate`'s, with ``max_tokens`` 512 by default.
        """
        prompt = self.apply_chat_template(messages, template=template)
        return _drain(self._start(prompt, options, 512, special=True))

    def chat_stream(self, messages: Sequence[Message], *, template: str | None = None,
                    **options: Unpack[GenerateOptions]) -> Stream:
        """:meth:`chat` as a :class:`Stream` of text pieces."""
        prompt = self.apply_chat_template(messages, template=template)
        with self._lock:
            return Stream(self._locked(self._start(prompt, options, 512, special=True)))

    # -- embeddings -------------------------------------------------------------------------

    @_serialised
    def embed(self, texts: str | Sequence[str], *, normalize: bool = True,
              pooling: Literal["mean", "cls", "last"] | None = None) -> np.ndarray:
        """Embeddings of ``texts``: a float32 array of shape (len(texts), n_embd).

        A single str gives a 1-D array. ``pooling`` defaults to the model's own (embedding
        models declare it in their metadata); a model that declares none, as plain language
        models do, is mean-pooled. ``normalize`` scales each row to unit length.
        Texts are evaluated in a separate context of ``n_ctx`` tokens, in shared batches.
        """
        import numpy as np  # only here: importing cyllama must not cost NumPy's import

        single = isinstance(texts, str)
        items = [texts] if isinstance(texts, str) else list(texts)
        for i, t in enumerate(items):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] must be a str, not {type(t).__name__}")
            if not t:
                raise ValueError(f"texts[{i}] is empty")
        if pooling is not None and pooling not in _POOLING:
            raise ValueError(f"pooling must be one of {', '.join(_POOLING)} or None, "
                             f"got {pooling!r}")
        if not items:
            return np.zeros((0, self.model.core.n_embd), dtype=np.float32)
        embedder = self._embedder(pooling)
        seqs = [self.tokenize(t) for t in items]
        for i, s in enumerate(seqs):
            if len(s) > embedder.n_batch:
                raise ContextOverflowError(
                    f"texts[{i}] is {len(s)} tokens but the context window (n_ctx) is "
                    f"{embedder.n_batch}")
        out = np.asarray(embedder.embed(seqs, normalize))
        return out[0] if single else out

    def _embedder(self, pooling: str | None) -> Any:
        key = pooling or "model"
        if key not in self._embedders:
            code = -1 if pooling is None else _POOLING[pooling]
            emb = _core.Embedder(self.model.core, self.n_ctx, self.n_threads_batch, code)
            if emb.pooling in (0, 4):  # none (a plain LM) or rank (a reranker's head)
                if emb.pooling == 4:
                    raise ValueError("this is a reranking model: it scores pairs, it does not "
                                     "embed texts")
                emb = _core.Embedder(self.model.core, self.n_ctx, self.n_threads_batch,
                                     _POOLING["mean"])
            self._embedders[key] = emb
        return self._embedders[key]

    # -- LoRA -------------------------------------------------------------------------------

    @_serialised
    def load_lora(self, path: str | os.PathLike[str], scale: float = 1.0) -> LoraAdapter:
        """Load a LoRA adapter (GGUF) for this model and apply it with ``scale``.

        Changing adapters empties the KV cache (its values were computed without them).
        """
        weight = check_float("scale", scale)
        p = check_gguf(path, "LoRA adapter")
        adapter = LoraAdapter(_core.LoraAdapter(self.model.core, str(p)), str(p), weight)
        self._loras.append(adapter)
        self._apply_loras()
        return adapter

    @_serialised
    def set_lora_scale(self, adapter: LoraAdapter, scale: float) -> None:
        """Change an applied adapter's scale (0 disables it without unloading)."""
        self._lora_index(adapter)
        adapter.scale = check_float("scale", scale)
        self._apply_loras()

    @_serialised
    def remove_lora(self, adapter: LoraAdapter) -> None:
        """Stop applying an adapter."""
        del self._loras[self._lora_index(adapter)]
        self._apply_loras()

    @property
    def loras(self) -> list[LoraAdapter]:
        """The applied adapters, in load order."""
        return list(self._loras)

    def _lora_index(self, adapter: LoraAdapter) -> int:
        for i, a in enumerate(self._loras):
            if a is adapter:
                return i
        raise ValueError(f"{adapter!r} is not applied to this LLM")

    def _apply_loras(self) -> None:
        self._ctx.set_loras([a._core for a in self._loras], [a.scale for a in self._loras])
        self.reset()

    # -- state ------------------------------------------------------------------------------

    @_serialised
    def save_state(self) -> State:
        """A snapshot of the KV cache and its tokens, to :meth:`load_state` later."""
        return State(tokens=tuple(self._cached), data=bytes(self._ctx.state_get()),
                     n_ctx=self.n_ctx, model=str(self.path))

    @_serialised
    def load_state(self, state: State) -> None:
        """Restore a snapshot from :meth:`save_state` of an LLM with the same model and n_ctx."""
        if not isinstance(state, State):
            raise TypeError(f"state must be a cyllama.State, not {type(state).__name__}")
        if state.n_ctx != self.n_ctx:
            raise ValueError(f"the state is of a context of {state.n_ctx} tokens, this LLM's is "
                             f"{self.n_ctx}")
        self._epoch += 1
        self._cached.clear()
        self._ctx.state_set(state.data, len(state.tokens))
        self._cached.extend(state.tokens)

    @_serialised
    def save_state_file(self, path: str | os.PathLike[str]) -> None:
        """Write the KV cache and its tokens to a llama.cpp session file."""
        self._ctx.state_save_file(os.fspath(path), self._cached)

    @_serialised
    def load_state_file(self, path: str | os.PathLike[str]) -> None:
        """Restore a session file written by :meth:`save_state_file` (or llama.cpp)."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(2, "state file not found", str(p))
        self._epoch += 1
        self._cached.clear()
        self._cached.extend(self._ctx.state_load_file(str(p)))

    @_serialised
    def close(self) -> None:
        """Free the context and the model now rather than at garbage collection."""
        self._embedders.clear()
        self._loras.clear()
        self._ctx = None
        self.model = None  # type: ignore[assignment]

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LLM({str(self.path)!r}, n_ctx={self.n_ctx}, n_threads={self.n_threads})"
