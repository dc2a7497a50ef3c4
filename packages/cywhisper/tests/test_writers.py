"""Writers: text, SRT, VTT and JSON outputs parse back to the transcript."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import tone
from cywhisper import Segment, Token, Transcript, Whisper

CLOCK = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def seconds(m: tuple[str, ...]) -> float:
    h, mi, s, ms = map(int, m)
    return h * 3600 + mi * 60 + s + ms / 1000


@pytest.fixture(scope="module")
def transcript(whisper: Whisper) -> Transcript:
    return whisper.transcribe(tone(65.0), fallback=False, language="en", word_timestamps=True)


def test_srt(transcript: Transcript) -> None:
    blocks = transcript.to_srt().strip().split("\n\n")
    assert len(blocks) == len(transcript.segments)
    for i, (block, seg) in enumerate(zip(blocks, transcript.segments, strict=True), 1):
        index, times, text = block.split("\n", 2)
        assert int(index) == i
        m = re.fullmatch(f"{CLOCK} --> {CLOCK}", times)
        assert m, times
        assert seconds(m.groups()[:4]) == pytest.approx(seg.start, abs=1e-3)
        assert seconds(m.groups()[4:]) == pytest.approx(seg.end, abs=1e-3)
        assert text == seg.text.strip()


def test_vtt(transcript: Transcript) -> None:
    text = transcript.to_vtt()
    assert text.startswith("WEBVTT\n\n")
    cues = re.findall(f"{CLOCK} --> {CLOCK}\n(.*)\n", text)
    assert [c[-1] for c in cues] == [s.text.strip() for s in transcript.segments]


def test_json_and_txt(transcript: Transcript, tmp_path: Path) -> None:
    data = json.loads(transcript.to_json())
    assert data["language"] == "en" and data["text"] == transcript.text
    assert [s["start"] for s in data["segments"]] == [s.start for s in transcript.segments]
    assert data["segments"][0]["words"][0]["text"] == transcript.segments[0].words[0].text  # type: ignore[index]
    assert transcript.to_txt().splitlines() == [s.text.strip() for s in transcript.segments]
    for fmt in ("txt", "srt", "vtt", "json"):
        path = transcript.write(tmp_path / f"out.{fmt}")
        assert path.read_text(encoding="utf-8") == transcript.format(fmt)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="format must be one of"):
        transcript.format("doc")  # type: ignore[arg-type]


def test_clock_formatting() -> None:
    seg = Segment(start=3725.5, end=3726.0625, text=" hi", tokens=(Token(1, " hi", 0.5),),
                  no_speech_probability=0.0)
    t = Transcript(language="en", segments=(seg,), duration=3727.0)
    assert "01:02:05,500 --> 01:02:06,062" in t.to_srt() or "01:02:06,063" in t.to_srt()
    assert "01:02:05.500 --> " in t.to_vtt()
