"""``/v1/audio/transcriptions`` and ``/v1/audio/translations`` over a cywhisper.Whisper."""

from __future__ import annotations

import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ._errors import APIError, check_model, invalid

#: The largest upload accepted (the OpenAI API's limit).
MAX_UPLOAD = 25 * 1024 * 1024
_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")


class WhisperService:
    """The speech model behind the API: a cywhisper.Whisper (one call at a time) and its name."""

    def __init__(self, whisper: Any, name: str) -> None:
        self.whisper = whisper
        self.name = name
        self.created = int(time.time())
        self._lock = threading.Lock()  # calls queue here instead of failing "busy"

    def transcribe(self, path: Path, **options: Any) -> Any:
        with self._lock:
            return self.whisper.transcribe(str(path), **options)


async def _save(upload: UploadFile, folder: str) -> Path:
    """The upload in a temporary file (its suffix kept: it tells formats apart), at most
    MAX_UPLOAD bytes."""
    suffix = Path(upload.filename or "audio").suffix[:16]
    path = Path(folder) / f"upload{suffix}"
    size = 0
    with path.open("wb") as f:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise APIError(413, f"the audio file is larger than {MAX_UPLOAD >> 20} MB",
                               param="file")
            f.write(chunk)
    if size == 0:
        raise invalid("the audio file is empty", "file")
    return path


def _segments(transcript: Any, temperature: float) -> list[dict[str, Any]]:
    out = []
    for i, s in enumerate(transcript.segments):
        probs = [t.probability for t in s.tokens if t.probability > 0]
        avg = sum(math.log(p) for p in probs) / len(probs) if probs else 0.0
        text = s.text.encode()
        out.append({"id": i, "seek": int(s.start * 100), "start": s.start, "end": s.end,
                    "text": s.text, "tokens": [t.id for t in s.tokens],
                    "temperature": temperature, "avg_logprob": avg,
                    "compression_ratio": len(text) / max(len(set(text)), 1),
                    "no_speech_prob": s.no_speech_probability})
    return out


def router(service: WhisperService) -> APIRouter:
    api = APIRouter()
    from cywhisper import AudioError, Whisper

    names = Whisper.languages()

    async def run(task: str, file: UploadFile, model: str, language: str | None,
                  prompt: str | None, response_format: str, temperature: float,
                  granularities: list[str] | None) -> Response:
        check_model(model, service.name, "speech")
        if response_format not in _FORMATS:
            raise invalid(f"response_format must be one of {', '.join(_FORMATS)}",
                          "response_format")
        if not 0 <= temperature <= 1:
            raise invalid("temperature must be in [0, 1]", "temperature")
        grains = set(granularities or ["segment"])
        if not grains <= {"word", "segment"}:
            raise invalid("timestamp_granularities are word and segment",
                          "timestamp_granularities")
        if grains != {"segment"} and response_format != "verbose_json":
            raise invalid("timestamp_granularities need response_format verbose_json",
                          "timestamp_granularities")
        options: dict[str, Any] = {"temperature": temperature,
                                   "translate": task == "translate",
                                   "word_timestamps": "word" in grains}
        if language:
            options["language"] = language
        if prompt:
            options["initial_prompt"] = prompt
        with tempfile.TemporaryDirectory(prefix="cyllama-audio-") as folder:
            path = await _save(file, folder)
            try:
                t = await run_in_threadpool(service.transcribe, path, **options)
            except AudioError as e:
                raise invalid(f"the audio file cannot be decoded: {e}", "file") from e
            except (ValueError, TypeError) as e:
                raise invalid(str(e)) from e
        if response_format == "text":
            return PlainTextResponse(t.text + "\n")
        if response_format == "srt":
            return PlainTextResponse(t.to_srt())
        if response_format == "vtt":
            return PlainTextResponse(t.to_vtt(), media_type="text/vtt")
        if response_format == "json":
            return JSONResponse({"text": t.text})
        body: dict[str, Any] = {"task": "translate" if task == "translate" else "transcribe",
                                "language": names.get(t.language, t.language),
                                "duration": t.duration, "text": t.text}
        if "segment" in grains:
            body["segments"] = _segments(t, temperature)
        if "word" in grains:
            body["words"] = [{"word": w.text.strip(), "start": w.start, "end": w.end}
                             for s in t.segments for w in (s.words or ())]
        return JSONResponse(body)

    @api.post("/v1/audio/transcriptions", response_model=None)
    async def transcriptions(
        file: UploadFile, model: Annotated[str, Form()],
        language: Annotated[str | None, Form()] = None,
        prompt: Annotated[str | None, Form()] = None,
        response_format: Annotated[str, Form()] = "json",
        temperature: Annotated[float, Form()] = 0.0,
        timestamp_granularities: Annotated[
            list[str] | None, Form(alias="timestamp_granularities[]")] = None,
    ) -> Response:
        return await run("transcribe", file, model, language, prompt, response_format,
                         temperature, timestamp_granularities)

    @api.post("/v1/audio/translations", response_model=None)
    async def translations(
        file: UploadFile, model: Annotated[str, Form()],
        prompt: Annotated[str | None, Form()] = None,
        response_format: Annotated[str, Form()] = "json",
        temperature: Annotated[float, Form()] = 0.0,
    ) -> Response:
        return await run("translate", file, model, None, prompt, response_format, temperature,
                         None)

    return api
