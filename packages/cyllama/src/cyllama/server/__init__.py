"""An OpenAI-compatible HTTP server (``pip install "cyllama[server]"``, ``cyllama serve``).

FastAPI on uvicorn. The language model runs in a :class:`cyllama.Engine`: concurrent requests
are decoded together (continuous batching). Endpoints: ``/v1/chat/completions``,
``/v1/completions``, ``/v1/embeddings``, ``/v1/models``, ``/health``.

>>> from cyllama.server import Server
>>> server = Server(cyllama.LLM("model.gguf"), n_parallel=4)
>>> server.run(port=8080)            # or serve server.app with any ASGI server
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import fastapi  # noqa: F401
    import uvicorn
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(f"the cyllama server needs the [server] extra: pip install "
                      f"'cyllama[server]' ({e})") from e

from .. import Engine
from ._app import create_app
from ._errors import APIError
from ._llm import LLMService
from ._llm import router as llm_router

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .. import LLM

__all__ = ["APIError", "Server", "is_loopback"]

log = logging.getLogger("cyllama.server")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only reaches this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server:
    """The models behind one OpenAI-compatible API, and its ASGI :attr:`app`.

    Parameters:
        llm: the language model (its weights; the server decodes in an :class:`Engine` of
            its own).
        name: the model name clients send (default: the file's stem).
        n_parallel: sequences decoded together (requests beyond wait for a free one).
        n_ctx: the context window of each sequence (default: the LLM's).
        api_key: when set, every ``/v1`` request needs ``Authorization: Bearer <api_key>``.
        cors_origins: origins browsers may call the API from (``["*"]`` for any).
    """

    def __init__(self, llm: LLM, *, name: str | None = None, n_parallel: int = 4,
                 n_ctx: int | None = None, api_key: str | None = None,
                 cors_origins: Sequence[str] = ()) -> None:
        self.engine = Engine(llm, n_parallel=n_parallel, n_ctx=n_ctx)
        self.llm_service = LLMService(self.engine, name or Path(llm.path).stem)
        self.started = time.time()
        self.app: FastAPI = create_app(
            routers=[llm_router(self.llm_service)], models=self._models, health=self._health,
            api_key=api_key, cors_origins=cors_origins)

    def _models(self) -> list[dict[str, Any]]:
        s = self.llm_service
        return [{"id": s.name, "object": "model", "created": s.created, "owned_by": "cyllama",
                 "meta": {"kind": "llm", "n_ctx": self.engine.n_ctx,
                          "n_parallel": self.engine.n_parallel,
                          "description": self.engine.llm.description}}]

    def _health(self) -> dict[str, Any]:
        return {"uptime_s": round(time.time() - self.started, 1),
                "models": [m["id"] for m in self._models()], "llm": self.engine.stats()}

    def close(self) -> None:
        """Stop the engine (requests still running end with an error)."""
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
        print(f"cyllama server: http://{shown}:{bound}/v1 serving {self.llm_service.name!r} "
              f"({self.engine.n_parallel} parallel sequences)", file=sys.stderr, flush=True)
        config = uvicorn.Config(self.app, log_level=log_level, timeout_graceful_shutdown=5)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            self.close()
            sock.close()
