"""``/v1/audio/transcriptions`` and ``/v1/audio/translations``: an uploaded file through the
speech model, answered as JSON (plain or verbose, with segments and words), text, SRT or VTT.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Form, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import PlainTextResponse, Response

from ._errors import APIError, check_model, invalid
from ._protocols import Transcript
from ._responses import Transcription, TranscriptionSegment, VerboseTranscription
from ._services import SpeechDep, SpeechService

#: The largest upload accepted (the OpenAI API's limit).
MAX_UPLOAD = 25 * 1024 * 1024
_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")

router = APIRouter()

#: What the routes answer: one of the JSON bodies (response_format json or verbose_json), or
#: text/plain (text, srt) or text/vtt.
_RESPONSES: dict[int | str, dict[str, object]] = {200: {"content": {
    "text/plain": {"schema": {"type": "string", "description": "response_format text or srt"}},
    "text/vtt": {"schema": {"type": "string", "description": "response_format vtt"}}}}}


@router.post("/v1/audio/transcriptions", response_model=VerboseTranscription | Transcription,
             responses=_RESPONSES)
async def transcriptions(
    file: UploadFile, model: Annotated[str, Form()], service: SpeechDep,
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
    timestamp_granularities: Annotated[
        list[str] | None, Form(alias="timestamp_granularities[]")] = None,
) -> VerboseTranscription | Transcription | Response:
    return await _transcribe(service, "transcribe", file, model, language, prompt,
                             response_format, temperature, timestamp_granularities)


@router.post("/v1/audio/translations", response_model=VerboseTranscription | Transcription,
             responses=_RESPONSES)
async def translations(
    file: UploadFile, model: Annotated[str, Form()], service: SpeechDep,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
) -> VerboseTranscription | Transcription | Response:
    return await _transcribe(service, "translate", file, model, None, prompt, response_format,
                             temperature, None)


async def _transcribe(speech: SpeechService, task: Literal["transcribe", "translate"],
                      file: UploadFile, model: str, language: str | None, prompt: str | None,
                      response_format: str, temperature: float,
                      granularities: list[str] | None
                      ) -> VerboseTranscription | Transcription | Response:
    check_model(model, speech.name, "speech")
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
    with tempfile.TemporaryDirectory(prefix="cyllama-audio-") as folder:
        path = await _save(file, folder)
        t = await run_in_threadpool(
            speech.transcribe, path, temperature=temperature, translate=task == "translate",
            word_timestamps="word" in grains, language=language, prompt=prompt)
    if response_format == "text":
        return PlainTextResponse(t.text + "\n")
    if response_format == "srt":
        return PlainTextResponse(t.to_srt())
    if response_format == "vtt":
        return PlainTextResponse(t.to_vtt(), media_type="text/vtt")
    if response_format == "json":
        return {"text": t.text}
    body: VerboseTranscription = {"task": task,
                                  "language": speech.languages.get(t.language, t.language),
                                  "duration": t.duration, "text": t.text}
    if "segment" in grains:
        body["segments"] = _segments(t, temperature)
    if "word" in grains:
        body["words"] = [{"word": w.text.strip(), "start": w.start, "end": w.end}
                         for s in t.segments for w in (s.words or ())]
    return body


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


def _segments(transcript: Transcript, temperature: float) -> list[TranscriptionSegment]:
    out: list[TranscriptionSegment] = []
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
