"""An OpenAI-compatible HTTP server (``pip install "cyllama[server]"``, ``cyllama serve``).

FastAPI on uvicorn. The language model runs in a :class:`cyllama.Engine`: concurrent requests
are decoded together (continuous batching). Endpoints: ``/v1/chat/completions``,
``/v1/completions``, ``/v1/embeddings``; with a cywhisper model ``/v1/audio/transcriptions``
and ``/v1/audio/translations``; with a cysd model ``/v1/images/generations`` and
``/v1/images/edits``; always ``/v1/models`` and ``/health``.

>>> from cyllama.server import Server
>>> server = Server(cyllama.LLM("model.gguf"), n_parallel=4)
>>> server.run(port=8080)            # or serve server.app with any ASGI server
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

try:
    import fastapi  # noqa: F401
    import uvicorn
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(f"the cyllama server needs the [server] extra: pip install "
                      f"'cyllama[server]' ({e})") from e

from ggml_family.checks import is_loopback

from .. import Engine
from ._app import create_app
from ._errors import APIError
from ._protocols import ImageModel, SpeechModel
from ._services import Services

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .. import LLM

__all__ = ["APIError", "ImageModel", "Server", "SpeechModel", "is_loopback"]

log = logging.getLogger("cyllama.server")


class Server:
    """The models behind one OpenAI-compatible API, and its ASGI :attr:`app`.

    Parameters:
        llm: the language model (its weights; the server decodes in an :class:`Engine` of
            its own), for chat, completions and embeddings.
        whisper: a ``cywhisper.Whisper`` (any :class:`SpeechModel`), for
            ``/v1/audio/transcriptions`` and translations.
        sd: a ``cysd.StableDiffusion`` (any :class:`ImageModel`), for
            ``/v1/images/generations`` and edits.
        name, whisper_name, sd_name: the model names clients send (default: the file stems).
        n_parallel: LLM sequences decoded together (requests beyond wait for a free one).
        n_ctx: the context window of each sequence (default: the LLM's).
        api_key: when set, every ``/v1`` request needs ``Authorization: Bearer <api_key>``.
        cors_origins: origins browsers may call the API from (``["*"]`` for any).

    At least one model is needed. Speech and image requests run one at a time each (on their
    own threads, beside the LLM's batches).
    """

    def __init__(self, llm: LLM | None = None, *, whisper: SpeechModel | None = None,
                 sd: ImageModel | None = None, name: str | None = None,
                 whisper_name: str | None = None, sd_name: str | None = None,
                 n_parallel: int = 4, n_ctx: int | None = None, api_key: str | None = None,
                 cors_origins: Sequence[str] = ()) -> None:
        if llm is None and whisper is None and sd is None:
            raise ValueError("give the server at least one model: llm, whisper or sd")
        #: The engine decoding the LLM's requests (None without an LLM).
        self.engine = (Engine(llm, n_parallel=n_parallel, n_ctx=n_ctx) if llm is not None
                       else None)
        try:
            #: The models served, by kind.
            self.services = Services.make(self.engine, whisper, sd, name=name,
                                          whisper_name=whisper_name, sd_name=sd_name)
        except BaseException:
            self.close()
            raise
        self.app: FastAPI = create_app(self.services, api_key=api_key,
                                       cors_origins=cors_origins)

    def close(self) -> None:
        """Stop the engine (requests still running end with an error)."""
        if self.engine is not None:
            self.engine.close()

    def run(self, host: str = "127.0.0.1", port: int = 8080, *, log_level: str = "info"
            ) -> None:
        """Serve until interrupted (Ctrl-C, SIGTERM); ``port=0`` takes a free port. The
        address is printed once the socket is bound."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        served = ", ".join(f"{m['id']!r} ({m['meta']['kind']})" for m in self.services.models())
        print(f"cyllama server: http://{shown}:{bound}/v1 serving {served}", file=sys.stderr,
              flush=True)
        config = uvicorn.Config(self.app, log_level=log_level, timeout_graceful_shutdown=5)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            self.close()
            sock.close()
