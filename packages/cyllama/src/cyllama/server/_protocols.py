"""What the server uses of a speech model (``cywhisper.Whisper``) and an image model
(``cysd.StableDiffusion``), as Protocols: cyllama types them without importing either package.

Attributes are read-only properties, so that the real classes' plain attributes, frozen
dataclass fields and narrower types (a ``Path``, a ``tuple``) all match.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ImageModel", "SpeechModel", "Transcript"]


class TranscriptToken(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def probability(self) -> float: ...


class TranscriptWord(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


class TranscriptSegment(Protocol):
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def text(self) -> str: ...
    @property
    def tokens(self) -> Sequence[TranscriptToken]: ...
    @property
    def no_speech_probability(self) -> float: ...
    @property
    def words(self) -> Sequence[TranscriptWord] | None: ...


class Transcript(Protocol):
    """A transcription (``cywhisper.Transcript``): its language code, duration in seconds,
    segments, text and subtitles."""

    @property
    def language(self) -> str: ...
    @property
    def duration(self) -> float: ...
    @property
    def segments(self) -> Sequence[TranscriptSegment]: ...
    @property
    def text(self) -> str: ...
    def to_srt(self) -> str: ...
    def to_vtt(self) -> str: ...


class SpeechModel(Protocol):
    """A speech recognition model, as ``cywhisper.Whisper``: ``/v1/audio/*`` transcribe an
    uploaded file with :meth:`transcribe`, ``/v1/models`` describes it."""

    @property
    def path(self) -> os.PathLike[str]: ...
    @property
    def model_type(self) -> str: ...
    @property
    def is_multilingual(self) -> bool: ...
    def languages(self) -> Mapping[str, str]:
        """Language codes and their English names."""
        ...

    def transcribe(self, audio: str, /, *, temperature: float, translate: bool,
                   word_timestamps: bool, language: str = ..., initial_prompt: str = ...
                   ) -> Transcript:
        """Transcribe (``translate``: into English) the audio file at ``audio``; an
        undecodable file raises ``cywhisper.AudioError``, a bad option ValueError."""
        ...


class ImageModel(Protocol):
    """An image generation model, as ``cysd.StableDiffusion``: ``/v1/images/*`` call
    txt2img, img2img and inpaint with ``as_pil=False`` and a ``cysd.Sampling``."""

    @property
    def paths(self) -> Mapping[str, str | os.PathLike[str]]: ...
    @property
    def size_multiple(self) -> int: ...
    @property
    def device(self) -> str: ...

    def txt2img(self, prompt: str, negative_prompt: str = ..., *, width: int = ...,
                height: int = ..., sampling: Any = ..., as_pil: bool | None = ...
                ) -> Sequence[np.ndarray]: ...

    def img2img(self, image: np.ndarray, prompt: str, negative_prompt: str = ..., *,
                strength: float = ..., sampling: Any = ..., as_pil: bool | None = ...
                ) -> Sequence[np.ndarray]: ...

    def inpaint(self, image: np.ndarray, mask: np.ndarray, prompt: str,
                negative_prompt: str = ..., *, strength: float = ..., sampling: Any = ...,
                as_pil: bool | None = ...) -> Sequence[np.ndarray]: ...
