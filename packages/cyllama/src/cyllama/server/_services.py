"""The models behind the API, one service per kind: the model, the name clients send, what
``/v1/models`` says of it, and the calls the routes make (speech and image models one at a
time: a second request waits for the first instead of failing "busy").

The app's state holds the :class:`Services`; routes get theirs as FastAPI dependencies
(``llm: LLMDep``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, Request

from .. import ContextOverflowError, Engine
from ._errors import invalid
from ._protocols import ImageModel, SpeechModel, Transcript
from ._responses import EngineStats, Health, ImageMeta, LLMMeta, ModelCard, SpeechMeta

if TYPE_CHECKING:
    import numpy as np


class LLMService:
    """The language model: chat, completions and embeddings, decoded in an :class:`Engine`."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.created = int(time.time())

    def embed(self, texts: list[str]) -> np.ndarray:
        """The embeddings of ``texts`` (blocking: run it on a worker thread). The LLM's own
        context computes them; calls from several threads take turns."""
        try:
            return self.engine.llm.embed(texts)
        except ContextOverflowError as e:
            raise invalid(str(e), "input", "context_length_exceeded") from e

    def card(self) -> ModelCard:
        meta: LLMMeta = {"kind": "llm", "n_ctx": self.engine.n_ctx,
                         "n_parallel": self.engine.n_parallel,
                         "description": self.engine.llm.description}
        return {"id": self.name, "object": "model", "created": self.created,
                "owned_by": "cyllama", "meta": meta}


class SpeechService:
    """The speech model (a ``cywhisper.Whisper``): transcriptions and translations."""

    def __init__(self, model: SpeechModel, name: str) -> None:
        self.model = model
        self.name = name
        self.created = int(time.time())
        #: Language codes and their English names (verbose_json gives the name).
        self.languages = dict(model.languages())
        self._lock = threading.Lock()

    def transcribe(self, path: Path, *, temperature: float, translate: bool,
                   word_timestamps: bool, language: str | None, prompt: str | None
                   ) -> Transcript:
        """The transcript of the audio file at ``path`` (blocking: run it on a worker thread);
        undecodable audio and bad options are 400s."""
        from cywhisper import AudioError

        options: dict[str, Any] = {}
        if language:
            options["language"] = language
        if prompt:
            options["initial_prompt"] = prompt
        with self._lock:
            try:
                return self.model.transcribe(str(path), temperature=temperature,
                                             translate=translate,
                                             word_timestamps=word_timestamps, **options)
            except AudioError as e:
                raise invalid(f"the audio file cannot be decoded: {e}", "file") from e
            except (ValueError, TypeError) as e:
                raise invalid(str(e)) from e

    def card(self) -> ModelCard:
        meta: SpeechMeta = {"kind": "speech", "type": self.model.model_type,
                            "multilingual": self.model.is_multilingual}
        return {"id": self.name, "object": "model", "created": self.created,
                "owned_by": "cywhisper", "meta": meta}


class ImageService:
    """The image model (a ``cysd.StableDiffusion``): generations and edits."""

    def __init__(self, model: ImageModel, name: str) -> None:
        self.model = model
        self.name = name
        self.created = int(time.time())
        self._lock = threading.Lock()

    @staticmethod
    def sampling(n: int, seed: int | None, steps: int | None, cfg_scale: float | None,
                 sampler: str | None, scheduler: str | None) -> Any:
        """The ``cysd.Sampling`` of a request (the model's defaults where it gives none);
        values cysd rejects are 400s."""
        from cysd import Sampling

        fields: dict[str, Any] = {"batch_count": n, "seed": seed}
        if steps is not None:
            fields["steps"] = steps
        if cfg_scale is not None:
            fields["cfg_scale"] = cfg_scale
        if sampler:
            fields["sampler"] = sampler
        if scheduler:
            fields["scheduler"] = scheduler
        try:
            return Sampling(**fields)
        except (ValueError, TypeError) as e:
            raise invalid(str(e)) from e

    # The three calls block (run them on a worker thread); cysd's errors (ImageError is a
    # ValueError) are 400s.

    def txt2img(self, prompt: str, negative_prompt: str, *, width: int, height: int,
                sampling: Any) -> Sequence[np.ndarray]:
        with self._lock, _bad_request():
            return self.model.txt2img(prompt, negative_prompt, width=width, height=height,
                                      sampling=sampling, as_pil=False)

    def img2img(self, image: np.ndarray, prompt: str, negative_prompt: str, *,
                strength: float, sampling: Any) -> Sequence[np.ndarray]:
        with self._lock, _bad_request():
            return self.model.img2img(image, prompt, negative_prompt, strength=strength,
                                      sampling=sampling, as_pil=False)

    def inpaint(self, image: np.ndarray, mask: np.ndarray, prompt: str, negative_prompt: str,
                *, strength: float, sampling: Any) -> Sequence[np.ndarray]:
        with self._lock, _bad_request():
            return self.model.inpaint(image, mask, prompt, negative_prompt, strength=strength,
                                      sampling=sampling, as_pil=False)

    def card(self) -> ModelCard:
        meta: ImageMeta = {"kind": "image", "size_multiple": self.model.size_multiple,
                           "device": self.model.device}
        return {"id": self.name, "object": "model", "created": self.created,
                "owned_by": "cysd", "meta": meta}


@contextlib.contextmanager
def _bad_request() -> Iterator[None]:
    """ValueError and TypeError raised in the block become a 400 with their message."""
    try:
        yield
    except (ValueError, TypeError) as e:
        raise invalid(str(e)) from e


@dataclass
class Services:
    """The services of one server (at least one), and when it started."""

    llm: LLMService | None = None
    speech: SpeechService | None = None
    image: ImageService | None = None
    started: float = field(default_factory=time.time)

    @classmethod
    def make(cls, engine: Engine | None, whisper: SpeechModel | None, sd: ImageModel | None,
             *, name: str | None = None, whisper_name: str | None = None,
             sd_name: str | None = None) -> Services:
        """The services of the models given, named by the arguments or their file stems."""
        out = cls()
        if engine is not None:
            out.llm = LLMService(engine, name or Path(engine.llm.path).stem)
        if whisper is not None:
            out.speech = SpeechService(whisper, whisper_name or Path(whisper.path).stem)
        if sd is not None:
            model = next(iter(sd.paths.values()))
            out.image = ImageService(sd, sd_name or Path(model).stem)
        names = [s.name for s in (out.llm, out.speech, out.image) if s is not None]
        if len(set(names)) != len(names):
            raise ValueError(f"the models need different names, got {names}")
        return out

    def models(self) -> list[ModelCard]:
        return [s.card() for s in (self.llm, self.speech, self.image) if s is not None]

    def health(self) -> Health:
        out: Health = {"status": "ok", "uptime_s": round(time.time() - self.started, 1),
                       "models": [m["id"] for m in self.models()]}
        if self.llm is not None:
            out["llm"] = cast("EngineStats", self.llm.engine.stats())
        return out


# -- FastAPI dependencies ------------------------------------------------------------------------
# (async: FastAPI would run plain functions on a worker thread.)

async def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _llm(services: Annotated[Services, Depends(_services)]) -> LLMService:
    assert services.llm is not None  # the routes are only served with the model
    return services.llm


async def _speech(services: Annotated[Services, Depends(_services)]) -> SpeechService:
    assert services.speech is not None
    return services.speech


async def _image(services: Annotated[Services, Depends(_services)]) -> ImageService:
    assert services.image is not None
    return services.image


ServicesDep = Annotated[Services, Depends(_services)]
LLMDep = Annotated[LLMService, Depends(_llm)]
SpeechDep = Annotated[SpeechService, Depends(_speech)]
ImageDep = Annotated[ImageService, Depends(_image)]
