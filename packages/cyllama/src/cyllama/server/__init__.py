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

from ggml_family.checks import is_loopback

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


class Server:
    """The models behind one OpenAI-compatible API, and its ASGI :attr:`app`.

    Parameters:
        llm: the language model (its weights; the server decodes in an :class:`Engine` of
            its own), for chat, completions and embeddings.
        whisper: a ``cywhisper.Whisper``, for ``/v1/audio/transcriptions`` and translations.
        sd: a ``cysd.StableDiffusion``, for ``/v1/images/generations`` and edits.
        name, whisper_name, sd_name: the model names clients send (default: the file stems).
        n_parallel: LLM sequences decoded together (requests beyond wait for a free one).
        n_ctx: the context window of each sequence (default: the LLM's).
        api_key: when set, every ``/v1`` request needs ``Authorization: Bearer <api_key>``.
        cors_origins: origins browsers may call the API from (``["*"]`` for any).

    At least one model is needed. Speech and image requests run one at a time each (on their
    own threads, beside the LLM's batches).
    """

    def __init__(self, llm: LLM | None = None, *, whisper: Any = None, sd: Any = None,
                 name: str | None = None, whisper_name: str | None = None,
                 sd_name: str | None = None, n_parallel: int = 4, n_ctx: int | None = None,
                 api_key: str | None = None, cors_origins: Sequence[str] = ()) -> None:
        if llm is None and whisper is None and sd is None:
            raise ValueError("give the server at least one model: llm, whisper or sd")
        self.started = time.time()
        routers = []
        self.engine = Engine(llm, n_parallel=n_parallel, n_ctx=n_ctx) if llm else None
        self.llm_service = (LLMService(self.engine, name or Path(llm.path).stem)
                            if llm is not None and self.engine is not None else None)
        if self.llm_service is not None:
            routers.append(llm_router(self.llm_service))
        self.whisper_service = None
        if whisper is not None:
            from ._audio import WhisperService
            from ._audio import router as audio_router

            self.whisper_service = WhisperService(whisper, whisper_name or Path(whisper.path).stem)
            routers.append(audio_router(self.whisper_service))
        self.sd_service = None
        if sd is not None:
            from ._images import SDService
            from ._images import router as images_router

            model = next(iter(sd.paths.values()))
            self.sd_service = SDService(sd, sd_name or Path(model).stem)
            routers.append(images_router(self.sd_service))
        names = [s.name for s in (self.llm_service, self.whisper_service, self.sd_service) if s]
        if len(set(names)) != len(names):
            raise ValueError(f"the models need different names, got {names}")
        self.app: FastAPI = create_app(routers=routers, models=self._models,
                                       health=self._health, api_key=api_key,
                                       cors_origins=cors_origins)

    def _models(self) -> list[dict[str, Any]]:
        def entry(service: Any, owner: str, **meta: Any) -> dict[str, Any]:
            return {"id": service.name, "object": "model", "created": service.created,
                    "owned_by": owner, "meta": meta}

        out = []
        if self.llm_service is not None and self.engine is not None:
            out.append(entry(self.llm_service, "cyllama", kind="llm", n_ctx=self.engine.n_ctx,
                             n_parallel=self.engine.n_parallel,
                             description=self.engine.llm.description))
        if (w := self.whisper_service) is not None:
            out.append(entry(w, "cywhisper", kind="speech", type=w.whisper.model_type,
                             multilingual=w.whisper.is_multilingual))
        if (d := self.sd_service) is not None:
            out.append(entry(d, "cysd", kind="image", size_multiple=d.sd.size_multiple,
                             device=d.sd.device))
        return out

    def _health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uptime_s": round(time.time() - self.started, 1),
                               "models": [m["id"] for m in self._models()]}
        if self.engine is not None:
            out["llm"] = self.engine.stats()
        return out

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
        served = ", ".join(f"{m['id']!r} ({m['meta']['kind']})" for m in self._models())
        print(f"cyllama server: http://{shown}:{bound}/v1 serving {served}", file=sys.stderr,
              flush=True)
        config = uvicorn.Config(self.app, log_level=log_level, timeout_graceful_shutdown=5)
        try:
            uvicorn.Server(config).run(sockets=[sock])
        finally:
            self.close()
            sock.close()
