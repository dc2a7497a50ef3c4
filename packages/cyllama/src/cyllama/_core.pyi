"""
Low-level bindings of llama.cpp on the family ggml (private: use cyllama).
"""

from collections.abc import Sequence
from typing import Annotated, Any

import numpy
from numpy.typing import NDArray


def set_log_handler(handler: object | None, min_level: int = 3) -> None:
    """
    Route ggml's (and the library's) log lines to handler(level, line), or to stderr with None. Lines below min_level are dropped before reaching Python.
    """

def set_error_classes(model_load: type, compute: type, backend: type, cancelled: type) -> None:
    """
    The Python classes raised for an unreadable model, a failed computation, an unusable backend and a cancelled call (ggml_family.register sets the host's own).
    """

def ggml_version() -> str:
    """Version of the family ggml this package was built with."""

def fingerprint() -> str:
    """
    The ggml ABI fingerprint of this build (backend modules must carry the same one).
    """

def backend_api_version() -> int:
    """ggml's GGML_BACKEND_API_VERSION at build time."""

def family_api() -> int:
    """The ggml_family API version this extension speaks (GGML_FAMILY_API)."""

def module_score(path: str) -> tuple[int, str]:
    """
    Open a backend module, ask its ggml_backend_score (0: cannot run on this machine) and close it again. Returns (score, error); score is -1 when it cannot be opened.
    """

def backend_load(path: str) -> tuple[str, list[str]]:
    """
    Load a backend module by path into ggml's registry. Returns the backend's name and the warning/error lines ggml logged while loading it (e.g. a missing driver).
    """

def backend_registered(name: str) -> bool:
    """Whether a backend with this name is in the registry."""

def backends() -> list[dict[str, Any]]:
    """
    Registered backends: name, devices (name, description, type, memory) and features.
    """

def device_memory(name: str) -> tuple[int, int]:
    """(free, total) bytes of a device's memory (an RPC server's: asked)."""

def rpc_add_server(endpoint: str) -> list[str]:
    """
    Connect to an RPC server (host:port) and register its devices; returns their names. BackendError when it cannot be reached or speaks another protocol version.
    """

def rpc_start_server(endpoint: str, cache_dir: str, n_threads: int, devices: Sequence[str]) -> None:
    """
    Serve these devices over ggml's RPC protocol at endpoint (host:port), the tensor cache in cache_dir (empty: none). Blocks (without the GIL) while it serves; raises BackendError when it cannot listen.
    """

def apply_chat_template(template: str, messages: Sequence[tuple[str, str]], add_assistant: bool) -> object:
    """
    Render (role, content) messages with a built-in llama.cpp chat format (by name, or detected from a Jinja template); None if the template is not one of them.
    """

def builtin_chat_templates() -> list[str]:
    """Names of llama.cpp's built-in chat formats."""

class LoraAdapter:
    """A LoRA adapter loaded for a model."""

    def __init__(self, model: object, path: str) -> None: ...

    @property
    def path(self) -> str: ...

    def metadata(self) -> dict[str, str]:
        """The adapter's GGUF metadata as strings."""

class Model:
    """A loaded llama.cpp model (weights and vocabulary)."""

    def __init__(self, path: str, n_gpu_layers: int = 0, use_mmap: bool = True, vocab_only: bool = False, devices: Sequence[str] | None = None, repack: bool = True) -> None:
        """
        devices: the ggml devices to place layers on, in order ([]: this CPU only; None: llama.cpp's choice, every GPU and RPC server). repack: CPU layers may use repacked weight layouts (faster; other float rounding than plain kernels).
        """

    @property
    def path(self) -> str: ...

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Token ids of UTF-8 text."""

    def detokenize(self, tokens: Sequence[int], remove_special: bool = False, unparse_special: bool = False) -> bytes:
        """UTF-8 bytes of token ids (may end mid-character)."""

    def token_to_piece(self, token: int, special: bool = False) -> bytes: ...

    @property
    def n_vocab(self) -> int: ...

    @property
    def bos(self) -> int: ...

    @property
    def eos(self) -> int: ...

    @property
    def add_bos(self) -> bool: ...

    def is_eog(self, token: int) -> bool:
        """Whether the token ends generation (EOS, EOT, ...)."""

    @property
    def n_ctx_train(self) -> int: ...

    @property
    def n_layer(self) -> int: ...

    @property
    def n_embd(self) -> int: ...

    @property
    def n_params(self) -> int: ...

    @property
    def size(self) -> int: ...

    @property
    def description(self) -> str: ...

    def metadata(self) -> dict[str, str]:
        """GGUF metadata as a dict of strings."""

    def layer_devices(self) -> list[str]:
        """Device name of each repeating layer, then of the output layer."""

    def kv_cache_bytes(self, n_ctx: int, n_seq_max: int = 1, n_ubatch: int = 512) -> int:
        """
        Bytes the KV cache of a context of n_ctx cells would take (an estimate made before allocating anything).
        """

    def chat_template(self, name: object | None = None) -> object:
        """The model's chat template from its metadata, or None."""

class Context:
    """A llama.cpp inference context (KV cache) over a Model."""

    def __init__(self, model: object, n_ctx: int, n_batch: int, n_ubatch: int, n_threads: int, n_threads_batch: int, n_seq_max: int = 1) -> None:
        """
        n_seq_max > 1: that many sequences share one unified KV cache of n_ctx cells.
        """

    def decode(self, tokens: Sequence[int]) -> None:
        """
        Evaluate tokens after the cached ones, in batches of n_batch (GIL released).
        """

    def decode_seqs(self, chunks: Sequence[tuple[int, Sequence[int], int, bool]]) -> list[int]:
        """
        One decode of (seq_id, tokens, first position, logits wanted) chunks of several sequences, n_batch tokens at most (GIL released). Returns each chunk's logits row (-1: none), for Sampler.sample() and logprobs().
        """

    def seq_rm(self, seq_id: int, p0: int, p1: int = -1) -> None:
        """
        Drop positions [p0, p1) of a sequence from the cache (-1: all sequences; p1 -1: to the end).
        """

    @property
    def n_seq_max(self) -> int:
        """How many sequences the cache holds."""

    @property
    def n_ctx_seq(self) -> int:
        """The most positions one sequence can hold."""

    def logits(self, row: int = -1) -> Annotated[NDArray[numpy.float32], dict(shape=(None,))]:
        """
        A copy of the logits after the last decoded token (or of a decode_seqs() row).
        """

    def greedy(self) -> int:
        """Id of the most likely next token (argmax of the logits)."""

    def truncate(self, n_tokens: int) -> None:
        """Drop cached tokens from position n_tokens on."""

    @property
    def n_past(self) -> int:
        """Number of tokens in the cache."""

    @property
    def n_ctx(self) -> int: ...

    @property
    def n_batch(self) -> int: ...

    def set_threads(self, n_threads: int, n_threads_batch: int) -> None: ...

    def perf(self) -> dict[str, Any]:
        """llama.cpp's timings: prompt and generation time and token counts."""

    def perf_reset(self) -> None: ...

    def decode_stats(self) -> tuple[int, float]:
        """(llama_decode calls, seconds inside them) since perf_reset()."""

    def set_loras(self, adapters: Sequence[object], scales: Sequence[float]) -> None:
        """Replace the context's LoRA adapters (empty: none)."""

    def state_get(self) -> bytes:
        """The context's state (KV cache, logits) as bytes."""

    def state_set(self, data: bytes, n_past: int) -> None:
        """Restore a state from state_get(); n_past: its token count."""

    def state_save_file(self, path: str, tokens: Sequence[int]) -> None:
        """Save the state and its tokens to a llama.cpp session file."""

    def state_load_file(self, path: str) -> list[int]:
        """Load a session file; returns its tokens."""

class SamplerParams:
    """The settings of one sampler chain (see cyllama.Sampling)."""

    def __init__(self) -> None: ...

    @property
    def temperature(self) -> float:
        """0 (or less): greedy; else the temperature"""

    @temperature.setter
    def temperature(self, arg: float, /) -> None: ...

    @property
    def top_k(self) -> int:
        """keep the k most likely tokens; 0 keeps all"""

    @top_k.setter
    def top_k(self, arg: int, /) -> None: ...

    @property
    def top_p(self) -> float:
        """nucleus sampling threshold; 1 is off"""

    @top_p.setter
    def top_p(self, arg: float, /) -> None: ...

    @property
    def min_p(self) -> float:
        """drop tokens below min_p x the best one's probability; 0 is off"""

    @min_p.setter
    def min_p(self, arg: float, /) -> None: ...

    @property
    def typical_p(self) -> float:
        """locally typical sampling; 1 is off"""

    @typical_p.setter
    def typical_p(self, arg: float, /) -> None: ...

    @property
    def penalty_last_n(self) -> int:
        """penalty window in tokens; 0 disables"""

    @penalty_last_n.setter
    def penalty_last_n(self, arg: int, /) -> None: ...

    @property
    def repeat_penalty(self) -> float:
        """repetition penalty; 1 is off"""

    @repeat_penalty.setter
    def repeat_penalty(self, arg: float, /) -> None: ...

    @property
    def frequency_penalty(self) -> float:
        """frequency penalty; 0 is off"""

    @frequency_penalty.setter
    def frequency_penalty(self, arg: float, /) -> None: ...

    @property
    def presence_penalty(self) -> float:
        """presence penalty; 0 is off"""

    @presence_penalty.setter
    def presence_penalty(self, arg: float, /) -> None: ...

    @property
    def mirostat(self) -> int:
        """0 off, 1 Mirostat, 2 Mirostat 2.0"""

    @mirostat.setter
    def mirostat(self, arg: int, /) -> None: ...

    @property
    def mirostat_tau(self) -> float:
        """Mirostat's target surprise"""

    @mirostat_tau.setter
    def mirostat_tau(self, arg: float, /) -> None: ...

    @property
    def mirostat_eta(self) -> float:
        """Mirostat's learning rate"""

    @mirostat_eta.setter
    def mirostat_eta(self, arg: float, /) -> None: ...

    @property
    def dry_multiplier(self) -> float:
        """DRY strength; 0 is off"""

    @dry_multiplier.setter
    def dry_multiplier(self, arg: float, /) -> None: ...

    @property
    def dry_base(self) -> float:
        """DRY's exponential base"""

    @dry_base.setter
    def dry_base(self, arg: float, /) -> None: ...

    @property
    def dry_allowed_length(self) -> int:
        """repeats this long are not penalised"""

    @dry_allowed_length.setter
    def dry_allowed_length(self, arg: int, /) -> None: ...

    @property
    def dry_penalty_last_n(self) -> int:
        """DRY's window in tokens; 0 disables"""

    @dry_penalty_last_n.setter
    def dry_penalty_last_n(self, arg: int, /) -> None: ...

    @property
    def dry_sequence_breakers(self) -> list[str]:
        """strings that end a DRY sequence"""

    @dry_sequence_breakers.setter
    def dry_sequence_breakers(self, arg: Sequence[str], /) -> None: ...

    @property
    def seed(self) -> int:
        """seed of the draw (and of Mirostat)"""

    @seed.setter
    def seed(self, arg: int, /) -> None: ...

    @property
    def logit_bias(self) -> list[tuple[int, float]]:
        """(token, value added to its logit) pairs"""

    @logit_bias.setter
    def logit_bias(self, arg: Sequence[tuple[int, float]], /) -> None: ...

    @property
    def grammar(self) -> str:
        """GBNF grammar the output must follow; empty: none"""

    @grammar.setter
    def grammar(self, arg: str, /) -> None: ...

    @property
    def grammar_root(self) -> str:
        """the grammar's start rule"""

    @grammar_root.setter
    def grammar_root(self, arg: str, /) -> None: ...

    def __repr__(self) -> str: ...

class Sampler:
    """A llama.cpp sampler chain with an optional grammar."""

    def __init__(self, model: object, params: SamplerParams) -> None: ...

    def sample(self, context: Context, row: int = -1) -> int:
        """
        Choose the next token from the context's last logits (or a decode_seqs() row).
        """

    def accept(self, token: int, grammar: bool = True) -> None:
        """Record a token (advances the grammar and the penalty history)."""

    def accept_many(self, tokens: Sequence[int]) -> None:
        """Record prompt tokens in the penalty history (not the grammar)."""

    @property
    def has_grammar(self) -> bool: ...

    @property
    def is_greedy(self) -> bool: ...

def logprobs(context: Context, token: int, top_n: int, row: int = -1) -> tuple[float, list[tuple[int, float]]]:
    """
    log-softmax of the last logits (or of a decode_seqs() row): (logprob of token, [(token, logprob)] of the top_n).
    """

class Embedder:
    """A llama.cpp context computing pooled embeddings."""

    def __init__(self, model: object, n_ctx: int, n_threads: int, pooling: int = -1) -> None: ...

    @property
    def pooling(self) -> int:
        """llama.cpp's pooling type: 0 none, 1 mean, 2 cls, 3 last, 4 rank."""

    @property
    def n_batch(self) -> int: ...

    def embed(self, sequences: Sequence[Sequence[int]], normalize: bool) -> Annotated[NDArray[numpy.float32], dict(shape=(None, None))]:
        """One pooled embedding row per token sequence."""

def llama_system_info() -> str:
    """
    llama.cpp's one-line summary of the CPU features the loaded CPU backend uses.
    """
