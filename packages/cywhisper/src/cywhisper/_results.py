"""Transcription results (segments, words, tokens) and their text, SRT, VTT and JSON forms."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["FORMATS", "Segment", "Token", "Transcript", "Word"]

Format = Literal["txt", "srt", "vtt", "json"]
FORMATS: tuple[str, ...] = ("txt", "srt", "vtt", "json")


@dataclass(frozen=True)
class Token:
    """A decoded token: its id, text, probability, and (with word timestamps) its times."""

    id: int
    text: str
    probability: float
    start: float | None = None  #: seconds (word_timestamps=True only)
    end: float | None = None


@dataclass(frozen=True)
class Word:
    """A word with its time span (seconds) and the lowest probability of its tokens."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of speech: times in seconds, its text and tokens, and how likely it is silence."""

    start: float
    end: float
    text: str
    tokens: tuple[Token, ...]
    no_speech_probability: float
    words: tuple[Word, ...] | None = None  #: with word_timestamps=True


def _clock(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


@dataclass(frozen=True)
class Transcript:
    """The result of :meth:`Whisper.transcribe`.

    ``language`` is the code of the spoken (or chosen) language, ``duration`` the audio length
    in seconds; segment times lie within it.
    """

    language: str
    segments: tuple[Segment, ...]
    duration: float

    @property
    def text(self) -> str:
        """The whole transcript."""
        return "".join(s.text for s in self.segments).strip()

    def to_txt(self) -> str:
        """One line per segment."""
        return "".join(s.text.strip() + "\n" for s in self.segments)

    def to_srt(self) -> str:
        """SubRip subtitles."""
        blocks = [f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
                  for i, s in enumerate(self.segments, 1)]
        return "\n".join(blocks)

    def to_vtt(self) -> str:
        """WebVTT subtitles."""
        cues = [f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n"
                for s in self.segments]
        return "WEBVTT\n\n" + "\n".join(cues)

    def to_dict(self) -> dict[str, Any]:
        """Plain data: language, duration, text and every segment with tokens (and words)."""
        return {"language": self.language, "duration": self.duration, "text": self.text,
                "segments": [asdict(s) for s in self.segments]}

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    def format(self, fmt: Format) -> str:
        """The transcript as ``txt``, ``srt``, ``vtt`` or ``json``."""
        writers = {"txt": self.to_txt, "srt": self.to_srt, "vtt": self.to_vtt,
                   "json": self.to_json}
        if fmt not in writers:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return writers[fmt]()

    def write(self, path: str | os.PathLike[str], fmt: Format | None = None) -> Path:
        """Write the transcript; the format defaults to the file's suffix."""
        p = Path(path)
        chosen = fmt or p.suffix.lstrip(".").lower()
        p.write_text(self.format(chosen), encoding="utf-8")  # type: ignore[arg-type]
        return p
