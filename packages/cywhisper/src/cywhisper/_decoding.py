"""Decoding settings: one validated, immutable dataclass that transcribe() and transcribe_iter()
share, mapped onto whisper.cpp's whisper_full parameters."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ggml_family.checks import check_float, check_int

__all__ = ["Decoding"]


@dataclass(frozen=True)
class Decoding:
    """How speech is decoded into text; checked when made (``Decoding(beam_size=0)`` raises).

    Pass one to :meth:`Whisper.transcribe` (``transcribe(audio, decoding)``), or give its fields
    as keywords (``transcribe(audio, language="de")``), which override the object's.

    Attributes:
        language: a code ("en", "de" ...) or English name; None: "auto" for multilingual
            models, else "en".
        translate: translate into English.
        word_timestamps: time each word (``Segment.words``) and token.
        initial_prompt: text that conditions the first window (names, spelling, style).
        beam_size: beam search with this many beams (1 to 16); None decodes greedily.
        temperature: sampling temperature of the first attempt, in [0, 1].
        fallback: when a window's decoding fails whisper's quality checks (repetitive,
            improbable), decode it again at a temperature 0.2 higher, up to 1.0.
        vad: a Silero VAD model file (whisper.cpp format): only speech is transcribed.
        max_segment_chars: split segments at words to at most this many characters.
    """

    language: str | None = None
    translate: bool = False
    word_timestamps: bool = False
    initial_prompt: str | None = None
    beam_size: int | None = None
    temperature: float = 0.0
    fallback: bool = True
    vad: str | os.PathLike[str] | None = None
    max_segment_chars: int | None = None

    def __post_init__(self) -> None:
        if self.language is not None and not isinstance(self.language, str):
            raise TypeError(f"language must be a str, not {type(self.language).__name__}")
        if self.initial_prompt is not None and not isinstance(self.initial_prompt, str):
            raise TypeError("initial_prompt must be a str")
        if self.beam_size is not None:
            check_int("beam_size", self.beam_size, 1, 16)
        object.__setattr__(self, "temperature", check_float("temperature", self.temperature,
                                                            0, 1))
        if self.max_segment_chars is not None:
            check_int("max_segment_chars", self.max_segment_chars, 1)
        if self.vad is not None:
            vad = Path(self.vad)
            if not vad.is_file():
                raise FileNotFoundError(2, "VAD model file not found", str(vad))
