"""The loaded model that an LLM and its Engines share: the weights on their devices, the
tokenizer and chat template, and what turns a request into a :class:`Job` for any context.

An :class:`LLM` creates one and decodes in a context of its own; an :class:`Engine` takes the
LLM's (``llm.model``) and decodes in another. Whatever both need lives here once, so neither
reaches into the other.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ggml_family
from ggml_family import BackendError
from ggml_family.checks import check_int, check_model_file, check_settings

from . import _chat, _core
from ._chat import Message
from ._errors import ContextOverflowError, ModelLoadError
from ._grammar import Grammar
from ._sampling import Sampling
from ._text import Job, TextOut, check_stop
from ._types import GenerateOptions

__all__ = ["LoadedModel", "check_gguf"]


def check_gguf(path: str | os.PathLike[str], what: str = "model") -> Path:
    """``path`` as a Path once it is a readable file that starts like a GGUF file."""
    return check_model_file(path, magic=b"GGUF", kind="GGUF file", error=ModelLoadError,
                            what=what)


class LoadedModel:
    """A GGUF model loaded once: its weights (on the devices chosen at load), vocabulary and
    chat template, and the seed generator of its sampled generations.

    Parameters are :class:`LLM`'s, which checks them; ``n_gpu_layers=None`` offloads every
    layer when a GPU device (or an RPC server) is there, and nothing otherwise.
    """

    def __init__(self, path: str | os.PathLike[str], *, n_gpu_layers: int | None,
                 use_mmap: bool, rpc: Sequence[str] | None, repack: bool, seed: int) -> None:
        state = ggml_family.host("cyllama")
        gpus = state.gpu_devices()  # discovers and loads plugins on first use
        if isinstance(rpc, str):
            raise TypeError("rpc must be a list of 'host:port' strings, not one string")
        self.path = check_gguf(path)
        #: The RPC servers' devices, by endpoint (``rpc=``).
        self.rpc: dict[str, list[str]] = {e: state.add_rpc_servers([e]) for e in rpc or ()}
        remote = [name for names in self.rpc.values() for name in names]
        self.remote_memory = sum(state.core.device_memory(name)[1] for name in remote)
        if n_gpu_layers is None:
            n_gpu_layers = -1 if gpus or remote else 0
        check_int("n_gpu_layers", n_gpu_layers, -1)
        if n_gpu_layers != 0 and not gpus and not remote:
            raise BackendError(state.no_gpu_error(f"n_gpu_layers={n_gpu_layers}", "n_gpu_layers=0"))
        self.n_gpu_layers = n_gpu_layers
        # Layers go to the RPC servers given here, then to the local GPUs; never to servers
        # another LLM of the process connected to (llama.cpp's default would take them all).
        devices = remote + gpus if remote or state.core.backend_registered("RPC") else None
        #: The extension's model (``_core.Model``).
        self.core = _core.Model(str(self.path), n_gpu_layers, use_mmap, False, devices,
                                bool(repack))
        self.n_vocab = int(self.core.n_vocab)
        #: Whether a token ends generation (the extension's own method: it runs per token).
        self.is_eog: Callable[[int], bool] = self.core.is_eog
        self.rng = random.Random(seed)  # seeds of sampled generations

    # -- contexts ---------------------------------------------------------------------------

    def context(self, n_ctx: int, n_batch: int, n_ubatch: int, n_threads: int,
                n_threads_batch: int, n_seq: int = 1, what: str | None = None) -> Any:
        """A new ``_core.Context`` of ``n_ctx`` tokens shared by ``n_seq`` sequences, once its
        KV cache is known to fit (``what`` names the setting that sized it, for the error)."""
        self.check_kv_memory(n_ctx, n_seq, n_ubatch or n_batch, what)
        return _core.Context(self.core, n_ctx, n_batch, n_ubatch, n_threads, n_threads_batch,
                             n_seq)

    def check_kv_memory(self, n_ctx: int, n_seq: int, n_ubatch: int,
                        what: str | None = None) -> None:
        """Refuse a context whose KV cache could never fit (more than the machine's RAM, plus
        its GPUs' memory when layers are offloaded, plus the RPC servers') before anything is
        allocated: an absurd n_ctx, or a file's absurd training context with n_ctx=0, would
        otherwise pass a lazily committed allocation and take the process down when it is
        zeroed."""
        need = self.core.kv_cache_bytes(n_ctx, n_seq, n_ubatch)
        have = (ggml_family.host("cyllama").memory_total(gpu=self.n_gpu_layers != 0)
                + self.remote_memory)
        if need > have:
            seqs = f" for {n_seq} sequences" if n_seq > 1 else ""
            raise ValueError(
                f"a context of {n_ctx} tokens ({what or 'n_ctx'}){seqs} needs "
                f"{need / 2**30:.1f} GiB for its KV cache, more than the {have / 2**30:.1f} GiB "
                "of memory this machine has; use a smaller n_ctx")

    # -- tokens -----------------------------------------------------------------------------

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False
                 ) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        return list(self.core.tokenize(text, add_special, parse_special))

    def detokenize(self, tokens: Sequence[int], special: bool = False) -> str:
        toks = list(tokens)
        if toks and not special and toks[0] == self.core.bos:
            toks = toks[1:]
        raw = self.core.detokenize(toks, False, special)
        return bytes(raw).decode("utf-8", errors="replace")

    def piece_text(self, token: int) -> str:
        """One token's text (U+FFFD where it holds part of a character)."""
        return bytes(self.core.token_to_piece(token, False)).decode("utf-8", errors="replace")

    def special_text(self, token: int) -> str:
        """A control token's text (BOS, EOS ...); empty for -1 (the model has none)."""
        if token < 0:
            return ""
        return bytes(self.core.token_to_piece(token, True)).decode("utf-8", "replace")

    def text_out(self, stops: tuple[str, ...]) -> TextOut:
        """What turns this model's generated tokens into text, cut at ``stops``."""
        return TextOut(self.core.token_to_piece, stops)

    # -- chat -------------------------------------------------------------------------------

    @property
    def chat_template(self) -> str:
        t = self.core.chat_template(None)
        if t is not None:
            return str(t)
        return _chat.default_template(dict(self.core.metadata()).get("general.architecture", ""))

    def render_chat(self, messages: Sequence[Message], template: str | None = None,
                    add_generation_prompt: bool = True) -> str:
        if template is None:
            template = self.chat_template
        elif not isinstance(template, str) or not template:
            raise TypeError("template must be a non-empty str")
        return _chat.render(template, messages, add_generation_prompt=add_generation_prompt,
                            bos=self.special_text(self.core.bos),
                            eos=self.special_text(self.core.eos))

    # -- requests ---------------------------------------------------------------------------

    def prompt_tokens(self, prompt: str | Sequence[int], n_ctx: int, special: bool = False
                      ) -> list[int]:
        """The tokens of a prompt (text, or token ids checked against the vocabulary) that
        must leave room for at least one more token in a window of ``n_ctx``."""
        if isinstance(prompt, str):
            add_bos = True
            if special:  # a rendered chat prompt may already start with the BOS text
                bos = self.core.bos
                add_bos = bos < 0 or not prompt.startswith(self.special_text(bos))
            tokens = self.tokenize(prompt, add_special=add_bos, parse_special=special)
        elif isinstance(prompt, Sequence) and not isinstance(prompt, bytes):
            tokens = [int(t) for t in prompt]
            for i, t in enumerate(tokens):
                if not 0 <= t < self.n_vocab:
                    raise ValueError(f"prompt[{i}]: token id {t} is out of range "
                                     f"[0, {self.n_vocab})")
        else:
            raise TypeError(f"prompt must be a str or a list of token ids, not "
                            f"{type(prompt).__name__}")
        if not tokens:
            raise ValueError("prompt is empty and the model adds no BOS token")
        if len(tokens) >= n_ctx:
            raise ContextOverflowError(
                f"prompt is {len(tokens)} tokens but the context window (n_ctx) is {n_ctx}; "
                "shorten the prompt or use a larger n_ctx")
        return tokens

    def sampler(self, sampling: Sampling, grammar: Grammar | None, n_ctx: int) -> Any:
        """A ``_core.Sampler`` chain for ``sampling`` (and ``grammar``) in a window of
        ``n_ctx`` (what a penalty window of -1 means); its seed from :attr:`rng` unless the
        Sampling fixes one."""
        sampling.check_vocab(self.n_vocab)
        seed = sampling.seed if sampling.seed is not None else self.rng.randrange(2**32)

        def window(n: int) -> int:
            return n_ctx if n == -1 else n

        fields = {f.name: getattr(sampling, f.name) for f in dataclasses.fields(sampling)}
        fields.update(seed=seed, penalty_last_n=window(sampling.penalty_last_n),
                      dry_penalty_last_n=window(sampling.dry_penalty_last_n),
                      dry_sequence_breakers=list(sampling.dry_sequence_breakers),
                      logit_bias=list(sampling.logit_bias.items()),
                      grammar=grammar.text if grammar else "",
                      grammar_root=grammar.root if grammar else "root")
        return _core.Sampler(self.core, ggml_family.params(_core.SamplerParams, **fields))

    def job(self, prompt: str | Sequence[int], options: GenerateOptions, max_tokens: int,
            n_ctx: int, special: bool = False) -> Job:
        """Validate a generation request (``max_tokens``: the default when ``options`` has
        none; ``n_ctx``: the window it runs in) into a :class:`Job`; every mistake raises
        here."""
        unknown = sorted(set(options) - set(GenerateOptions.__annotations__))
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: "
                            f"{', '.join(GenerateOptions.__annotations__)}")
        max_tokens = check_int("max_tokens", options.get("max_tokens", max_tokens), 0)
        sampling, stop = options.get("sampling"), options.get("stop")
        logprobs, grammar = options.get("logprobs"), options.get("grammar")
        json_schema = options.get("json_schema")
        sampling = check_settings("sampling", sampling, Sampling, {}, default=Sampling.GREEDY)
        stops = check_stop(stop)
        if logprobs is not None:
            check_int("logprobs", logprobs, 0, 100)
        if grammar is not None and json_schema is not None:
            raise ValueError("pass either grammar or json_schema, not both")
        if json_schema is not None:
            grammar = Grammar.from_json_schema(json_schema)
        elif isinstance(grammar, str):
            grammar = Grammar(grammar)
        elif grammar is not None and not isinstance(grammar, Grammar):
            raise TypeError(f"grammar must be a GBNF str or a cyllama.Grammar, not "
                            f"{type(grammar).__name__}")
        tokens = self.prompt_tokens(prompt, n_ctx, special)
        sampler = self.sampler(sampling, grammar, n_ctx)  # parses the grammar: ValueError here
        return Job(tokens, sampler, sampling, max_tokens, stops, logprobs)
