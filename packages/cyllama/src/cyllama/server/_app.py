"""The ASGI application: the routes of the models served, the API-key check, CORS, and
OpenAI-shaped errors."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response

from . import _routes_models, _routes_text
from ._errors import APIError
from ._services import Services

log = logging.getLogger("cyllama.server")


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON: {first.get('msg', '')}", None
    param = ".".join(loc) or None
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    where = f"{param}: " if param else ""
    return f"{where}{first.get('msg', 'invalid value')}{more}", param


class _JSONBodies:
    """ASGI middleware: a POST body that is not multipart is read as JSON whatever its
    Content-Type says (``curl -d`` sends form encoding), as llama-server does."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            kind = dict(scope["headers"]).get(b"content-type", b"")
            if not kind.startswith(b"multipart/") and b"json" not in kind:
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


def create_app(services: Services, *, api_key: str | None = None,
               cors_origins: Sequence[str] = ()) -> FastAPI:
    """The app serving ``services``: the routes of each model kind, ``/v1/models`` and
    ``/health``."""
    # JSONResponse named (not FastAPI's default): responses are rendered by json.dumps, not
    # by pydantic's JSON writer, which writes floats differently (1e-5 for 1e-05).
    app = FastAPI(title="cyllama server", docs_url="/docs", redoc_url=None,
                  default_response_class=JSONResponse)
    app.state.services = services

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> Response:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        message, param = _validation_message(exc)
        return APIError(400, message, param=param).response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}"
        return APIError(exc.status_code, detail, code=code).response()

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("request %s %s failed", request.method, request.url.path)
        return APIError(500, f"{type(exc).__name__}: {exc}").response()

    if api_key:
        expected = f"Bearer {api_key}".encode()

        @app.middleware("http")
        async def check_key(request: Request,
                            call_next: Callable[[Request], Awaitable[Response]]) -> Response:
            if request.url.path.startswith("/v1") and request.method != "OPTIONS":
                given = request.headers.get("authorization", "").encode()
                if not hmac.compare_digest(given, expected):
                    return APIError(401, "Incorrect API key provided (send it as "
                                         "'Authorization: Bearer KEY')",
                                    code="invalid_api_key").response()
            return await call_next(request)

    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["*"], allow_headers=["*"])

    app.add_middleware(_JSONBodies)
    for router in _routers(services):
        app.include_router(router)
    return app


def _routers(services: Services) -> list[APIRouter]:
    """The routes of the models served (those of speech and images are imported only then:
    their multipart forms need python-multipart)."""
    out = []
    if services.llm is not None:
        out.append(_routes_text.router)
    if services.speech is not None:
        from . import _routes_audio

        out.append(_routes_audio.router)
    if services.image is not None:
        from . import _routes_images

        out.append(_routes_images.router)
    out.append(_routes_models.router)
    return out
