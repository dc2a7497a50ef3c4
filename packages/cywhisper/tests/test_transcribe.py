"""Transcription on the tiny model: every input form, ordered segments within the audio,
languages, word timestamps, beams, progress, cancellation and the segment iterator."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import tone, write_wav
from cywhisper import Decoding, Segment, Transcript, Whisper
from interrupt import interrupt_after  # tools/fixtures (conftest)

FAST = {"fallback": False, "language": "en"}


def check(t: Transcript, duration: float) -> None:
    assert t.duration == pytest.approx(duration, abs=1e-3)
    assert t.segments, "no segments"
    prev = 0.0
    for s in t.segments:
        assert isinstance(s, Segment)
        assert prev <= s.start <= s.end <= duration
        prev = s.start
        assert s.tokens and all(0.0 <= tok.probability <= 1.0 for tok in s.tokens)
        assert 0.0 <= s.no_speech_probability <= 1.0
        assert "".join(tok.text for tok in s.tokens).strip() == s.text.strip()
    assert t.text == "".join(s.text for s in t.segments).strip()


def test_a_decoding_object_is_the_keywords(whisper: Whisper) -> None:
    """One Decoding serves transcribe and transcribe_iter; keywords override its fields."""
    # Greedy: beam search on the random tiny model is not reproducible run to run.
    decoding = Decoding(language="en", fallback=False, word_timestamps=True,
                        initial_prompt="Names: Ada, Grace.")
    a = whisper.transcribe(tone(2.0), decoding)
    b = whisper.transcribe(tone(2.0), language="en", fallback=False, word_timestamps=True,
                           initial_prompt="Names: Ada, Grace.")
    assert [[t.id for t in s.tokens] for s in a.segments] == [
        [t.id for t in s.tokens] for s in b.segments]
    assert a.text == b.text and a.segments[0].words is not None
    assert whisper.transcribe(tone(1.0), decoding, language="de").language == "de"
    assert [s.text for s in whisper.transcribe_iter(tone(2.0), decoding)] == [
        s.text for s in a.segments]
    with pytest.raises(TypeError, match="unexpected keyword argument 'beamsize'"):
        whisper.transcribe(tone(1.0), beamsize=2)
    with pytest.raises(TypeError, match=r"decoding must be a cywhisper\.Decoding, not dict"):
        whisper.transcribe(tone(1.0), {"language": "en"})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^beam_size must be in \[1, 16\], got 0$"):
        Decoding(beam_size=0)
    with pytest.raises(TypeError, match=r"^temperature must be a number, not str$"):
        Decoding(temperature="0.2")  # type: ignore[arg-type]


@pytest.mark.smoke
def test_every_audio_form_gives_the_same_transcript(whisper: Whisper, tmp_path: Path) -> None:
    audio = tone(3.0)
    ref = whisper.transcribe(audio, **FAST)
    check(ref, 3.0)
    wav = write_wav(tmp_path / "a.wav", audio, width=4)
    stereo = np.stack([audio, audio], 1)
    for form in (wav, str(wav), stereo, audio.astype(np.float64)):
        assert whisper.transcribe(form, **FAST).text == ref.text
    at_8k = whisper.transcribe(tone(3.0, 8000), sample_rate=8000, **FAST)
    check(at_8k, 3.0)


def test_long_audio_has_several_windows(whisper: Whisper) -> None:
    t = whisper.transcribe(tone(65.0), **FAST)
    check(t, 65.0)
    assert t.segments[-1].start >= 30.0  # the last 30 s window was decoded


def test_language(whisper: Whisper) -> None:
    assert whisper.is_multilingual
    assert whisper.transcribe(tone(1.0), language="de", fallback=False).language == "de"
    assert whisper.transcribe(tone(1.0), language="German", fallback=False).language == "de"
    auto = whisper.transcribe(tone(1.0), fallback=False)
    ranked = whisper.detect_language(tone(1.0))
    assert auto.language == ranked[0][0]
    probs = [p for _, p in ranked]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-3)
    assert len(ranked) == len(Whisper.languages()) and Whisper.languages()["fr"] == "french"
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        whisper.transcribe(tone(1.0), language="xx")


def test_word_timestamps(whisper: Whisper) -> None:
    t = whisper.transcribe(tone(4.0), word_timestamps=True, **FAST)
    for s in t.segments:
        assert s.words
        for w in s.words:
            assert s.start - 0.01 <= w.start <= w.end <= s.end + 0.01
            assert w.text and 0 <= w.probability <= 1
        assert all(tok.start is not None for tok in s.tokens)
    assert whisper.transcribe(tone(4.0), **FAST).segments[0].words is None


def test_options_run(whisper: Whisper) -> None:
    check(whisper.transcribe(tone(2.0), beam_size=2, **FAST), 2.0)
    check(whisper.transcribe(tone(2.0), translate=True, language="de", fallback=False), 2.0)
    check(whisper.transcribe(tone(2.0), initial_prompt="Names: Ada, Grace.", **FAST), 2.0)
    check(whisper.transcribe(tone(2.0), temperature=0.5, **FAST), 2.0)
    short = whisper.transcribe(tone(8.0), max_segment_chars=12, **FAST)
    assert all(len(s.text.strip()) <= 12 + 8 for s in short.segments)  # split at words


def test_progress_and_cancel(whisper: Whisper) -> None:
    seen: list[int] = []
    whisper.transcribe(tone(65.0), progress=seen.append, **FAST)
    assert seen and seen == sorted(seen) and seen[-1] == 100

    class Stop(Exception):
        pass

    def stop(percent: int) -> None:
        if percent > 0:
            raise Stop(percent)

    with pytest.raises(Stop):
        whisper.transcribe(tone(65.0), progress=stop, **FAST)
    check(whisper.transcribe(tone(1.0), **FAST), 1.0)  # still usable


def test_iterator_yields_the_same_segments(whisper: Whisper) -> None:
    audio = tone(65.0)
    whisper.transcribe(audio, **FAST)  # whisper.cpp's first run after loading can differ in
    full = whisper.transcribe(audio, **FAST)  # no_speech_probability (only), later ones not
    assert tuple(whisper.transcribe_iter(audio, **FAST)) == full.segments


def test_breaking_out_cancels_the_iterator(whisper: Whisper) -> None:
    it = whisper.transcribe_iter(tone(95.0), **FAST)
    first = next(it)
    assert first.start < 30.0
    with pytest.raises(RuntimeError, match="busy"):
        whisper.transcribe(tone(1.0), **FAST)
    it.close()
    check(whisper.transcribe(tone(1.0), **FAST), 1.0)


def test_calls_from_two_threads_are_serialised(whisper: Whisper) -> None:
    errors: list[BaseException] = []
    results: list[str] = []

    def run() -> None:
        try:
            results.append(whisper.transcribe(tone(30.0), **FAST).text)
        except RuntimeError as e:
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) + len(errors) == 2 and results
    assert all("busy" in str(e) for e in errors)


def test_same_audio_same_transcript_on_every_call(tiny_model: Path) -> None:
    # A server answers many requests with one instance: a call must not depend on the ones
    # before it, also when tokens are drawn (temperature > 0, and the random model's output
    # fails whisper's quality checks, so the fallback draws more).
    audio = tone(2.0)
    w = Whisper(tiny_model, n_threads=2)
    for temperature in (0.0, 0.8):
        first = w.transcribe(audio, language="en", temperature=temperature)
        w.transcribe(tone(1.0, freq=880.0), language="en", temperature=1.0)  # another call
        assert w.transcribe(audio, language="en", temperature=temperature).segments == \
            first.segments
        fresh = Whisper(tiny_model, n_threads=2)
        assert fresh.transcribe(audio, language="en", temperature=temperature).text == first.text


def test_separate_models_in_parallel_threads(tiny_model: Path) -> None:
    audio = [tone(2.0, freq=f) for f in (300.0, 600.0, 900.0)]
    models = [Whisper(tiny_model, n_threads=1) for _ in audio]
    want = [m.transcribe(a, **FAST).text for m, a in zip(models, audio, strict=True)]
    got: list[str | None] = [None] * len(audio)

    def worker(i: int) -> None:
        got[i] = models[i].transcribe(audio[i], **FAST).text

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(audio))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == want


def test_ctrl_c_stops_a_long_transcription(whisper: Whisper) -> None:
    # No callback runs Python during whisper_full: the abort callback polls for the signal.
    audio = tone(600.0)  # 20 windows: tens of seconds on the tiny model
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), interrupt_after(0.5):
        whisper.transcribe(audio, **FAST)
    assert time.monotonic() - start < 5
    check(whisper.transcribe(tone(1.0), **FAST), 1.0)  # still usable
