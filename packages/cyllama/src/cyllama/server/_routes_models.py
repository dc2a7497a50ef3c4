"""``/v1/models`` (the models served, by the names clients send) and ``/health``."""

from __future__ import annotations

from fastapi import APIRouter

from ._errors import APIError
from ._responses import Health, ModelCard, ModelList
from ._services import ServicesDep

router = APIRouter()


@router.get("/v1/models")
async def list_models(services: ServicesDep) -> ModelList:
    return {"object": "list", "data": services.models()}


@router.get("/v1/models/{name:path}")
async def get_model(name: str, services: ServicesDep) -> ModelCard:
    for m in services.models():
        if m["id"] == name:
            return m
    raise APIError(404, f"The model '{name}' does not exist", param="model",
                   code="model_not_found")


@router.get("/health")
async def get_health(services: ServicesDep) -> Health:
    """The server's uptime and models; with a language model, its engine's sequences (busy,
    waiting, decode steps, cached tokens)."""
    return services.health()
