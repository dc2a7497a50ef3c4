"""The LLM class: load a GGUF model, tokenize, and generate text."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from . import _core
from ._errors import BackendError, ContextOverflowError, ModelLoadError
from ._ggml import state as backend_state

__all__ = ["LLM"]

_GGUF_MAGIC = b"GGUF"


def _check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_model_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, "model file not found", str(p))
    if p.is_dir():
        raise IsADirectoryError(21, "model path is a directory, not a GGUF file", str(p))
    with p.open("rb") as f:
        magic = f.read(4)
    if not magic:
        raise ModelLoadError(f"model file {p} is empty")
    if magic != _GGUF_MAGIC:
        raise ModelLoadError(f"model file {p} is not a GGUF file (it starts with {magic!r}, "
                             f"not {_GGUF_MAGIC!r})")
    return p


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class LLM:
    """A llama.cpp model with one inference context.

    >>> llm = LLM("gemma-3-270m-q4_k_m.gguf", n_ctx=2048)
    >>> llm.generate("The capital of France is", max_tokens=8)

    Parameters:
        path: a GGUF model file.
        n_ctx: context window in tokens; 0 takes the model's training context.
        n_threads: CPU threads for generation (default: all cores).
        n_threads_batch: CPU threads for prompt processing (default: ``n_threads``).
        n_batch: the most tokens evaluated per call while processing a prompt.
        n_ubatch: physical batch size (default: ``min(n_batch, 512)``).
        seed: random seed for sampling (greedy decoding ignores it).
        n_gpu_layers: layers to offload to GPU devices; -1 all of them, 0 none. The default
            offloads everything when a GPU plugin registered a device, and nothing otherwise.
            Asking for layers when no GPU device is registered raises BackendError.
        use_mmap: map the file instead of reading it into memory.

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
    ) -> None:
        cores = os.cpu_count() or 4
        self.n_threads = _check_int("n_threads", cores if n_threads is None else n_threads, 1, 512)
        self.n_threads_batch = _check_int(
            "n_threads_batch", self.n_threads if n_threads_batch is None else n_threads_batch,
            1, 512)
        _check_int("n_ctx", n_ctx, 0)
        _check_int("n_batch", n_batch, 1)
        _check_int("n_ubatch", n_batch if n_ubatch is None else n_ubatch, 1, n_batch)
        self.seed = _check_int("seed", seed, 0, 2**32 - 1)
        state = backend_state(_core)
        gpus = state.gpu_devices()  # discovers and loads plugins on first use
        if n_gpu_layers is None:
            n_gpu_layers = -1 if gpus else 0
        _check_int("n_gpu_layers", n_gpu_layers, -1)
        if n_gpu_layers != 0 and not gpus:
            plugins = ", ".join(f"{p.name}: {p.state}" + (f" ({p.reason})" if p.reason else "")
                                for p in state.load_plugins()) or "none installed"
            raise BackendError(
                f"n_gpu_layers={n_gpu_layers} asks for a GPU, but no GPU device is registered "
                f"(plugins: {plugins}). Install one (pip install 'cyllama[cuda]') or pass "
                "n_gpu_layers=0 to run on the CPU.")
        self.n_gpu_layers = n_gpu_layers
        self.path = _check_model_file(path)
        self._model = _core.Model(str(self.path), n_gpu_layers, use_mmap, False)
        if n_ctx == 0:
            n_ctx = self._model.n_ctx_train
        self._ctx = _core.Context(self._model, n_ctx, n_batch, n_ubatch or 0,
                                  self.n_threads, self.n_threads_batch)
        self._cached: list[int] = []  # the tokens in the KV cache, in order

    # -- model facts ------------------------------------------------------------------------

    @property
    def n_ctx(self) -> int:
        """Context window in tokens."""
        return int(self._ctx.n_ctx)

    @property
    def n_vocab(self) -> int:
        """Vocabulary size."""
        return int(self._model.n_vocab)

    @property
    def metadata(self) -> dict[str, str]:
        """The model's GGUF metadata (values as strings)."""
        return dict(self._model.metadata())

    @property
    def layer_devices(self) -> dict[str, int]:
        """How many layers (the output layer counted as one) run on each device."""
        counts: dict[str, int] = {}
        for dev in self._model.layer_devices():
            counts[dev] = counts.get(dev, 0) + 1
        return counts

    @property
    def description(self) -> str:
        """llama.cpp's one-line description (architecture, size, quantisation)."""
        return str(self._model.description)

    # -- tokens -----------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = False
                 ) -> list[int]:
        """Token ids of ``text``; ``add_special`` adds BOS (or what the model asks for)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        return list(self._model.tokenize(text, add_special, parse_special))

    def detokenize(self, tokens: Sequence[int], *, special: bool = False) -> str:
        """Text of token ids, the inverse of :meth:`tokenize`.

        A leading BOS is dropped (``special=True`` keeps it and renders control tokens), and
        so is the space a SentencePiece vocabulary puts in front of the first word, so that
        ``detokenize(tokenize(text)) == text``.
        """
        toks = list(tokens)
        if toks and not special and toks[0] == self._model.bos:
            toks = toks[1:]
        raw = self._model.detokenize(toks, False, special)
        return bytes(raw).decode("utf-8", errors="replace")

    def _pieces(self, tokens: Sequence[int]) -> bytes:
        """The bytes of generated tokens, exactly as they continue the text before them."""
        piece = self._model.token_to_piece
        return b"".join(bytes(piece(t, False)) for t in tokens)

    # -- generation -------------------------------------------------------------------------

    def _prefill(self, tokens: list[int]) -> None:
        """Make the KV cache hold ``tokens`` with logits for the last one, reusing a prefix."""
        keep = _common_prefix(self._cached, tokens)
        if keep == len(tokens):
            keep -= 1  # the last token must be evaluated again to get its logits
        self._ctx.truncate(keep)
        del self._cached[keep:]
        self._ctx.decode(tokens[keep:])
        self._cached.extend(tokens[keep:])

    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens`` into the KV cache (reusing a cached prefix), as for a prompt."""
        toks = [int(t) for t in tokens]
        if not toks:
            raise ValueError("eval() needs at least one token")
        if len(toks) > self.n_ctx:
            raise ContextOverflowError(
                f"{len(toks)} tokens do not fit the context window (n_ctx) of {self.n_ctx}")
        self._prefill(toks)

    def reset(self) -> None:
        """Empty the KV cache; the next prompt is evaluated from scratch."""
        self._ctx.truncate(0)
        self._cached.clear()

    def generate(self, prompt: str, *, max_tokens: int = 128) -> str:
        """Continue ``prompt`` greedily and return the generated text (prompt excluded).

        Generation stops after ``max_tokens`` tokens, at an end-of-generation token, or when
        the context window is full.
        """
        _check_int("max_tokens", max_tokens, 0)
        tokens = self.tokenize(prompt)
        if not tokens:
            raise ValueError("prompt is empty and the model adds no BOS token")
        if len(tokens) >= self.n_ctx:
            raise ContextOverflowError(
                f"prompt is {len(tokens)} tokens but the context window (n_ctx) is {self.n_ctx}; "
                "shorten the prompt or create the LLM with a larger n_ctx")
        if max_tokens == 0:
            return ""
        self._prefill(tokens)
        ctx, model, cached = self._ctx, self._model, self._cached
        out: list[int] = []
        while True:
            token = ctx.greedy()
            if model.is_eog(token):
                break
            out.append(token)
            if len(out) >= max_tokens or ctx.n_past >= self.n_ctx:
                break
            ctx.decode([token])
            cached.append(token)
        return self._pieces(out).decode("utf-8", errors="replace")

    def close(self) -> None:
        """Free the context and the model now rather than at garbage collection."""
        self._ctx = None  # type: ignore[assignment]
        self._model = None  # type: ignore[assignment]

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LLM({str(self.path)!r}, n_ctx={self.n_ctx}, n_threads={self.n_threads})"
