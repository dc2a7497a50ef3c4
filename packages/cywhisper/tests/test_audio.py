"""Audio input: WAV variants, arrays of every accepted dtype and shape, resampling, errors."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from conftest import tone, write_wav
from cywhisper import SAMPLE_RATE, AudioError, load_audio


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * SAMPLE_RATE / len(x))


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_wav_sample_widths(tmp_path: Path, width: int) -> None:
    src = tone(1.0)
    x = load_audio(write_wav(tmp_path / "a.wav", src, width=width))
    assert x.dtype == np.float32 and x.shape == (SAMPLE_RATE,)
    assert np.abs(x - src).max() < (0.02 if width == 1 else 1e-3)


def test_float_wav(tmp_path: Path) -> None:
    src = tone(0.5)
    data = src.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, SAMPLE_RATE, SAMPLE_RATE * 4, 4, 32)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data"
            + struct.pack("<I", len(data)) + data)
    path = tmp_path / "f.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    assert np.array_equal(load_audio(path), src)


def test_stereo_44k_is_mixed_and_resampled(tmp_path: Path) -> None:
    left, right = tone(2.0, 44100, 440.0), tone(2.0, 44100, 440.0) * 0.5
    x = load_audio(write_wav(tmp_path / "s.wav", np.stack([left, right], 1), rate=44100))
    assert x.shape == (2 * SAMPLE_RATE,)
    assert abs(dominant_hz(x) - 440.0) < 1.0
    assert 0.3 < np.abs(x).max() < 0.45  # the average of 0.5 and 0.25 amplitude


def test_arrays() -> None:
    f = tone(1.0)
    assert load_audio(f) is not f and np.array_equal(load_audio(f), f)
    assert np.allclose(load_audio(f.astype(np.float64)), f)
    i16 = (f * 32767).astype(np.int16)
    assert np.abs(load_audio(i16) - f).max() < 1e-3
    stereo = np.stack([f, f], axis=1)
    assert np.allclose(load_audio(stereo), f)
    x8k = load_audio(tone(1.0, 8000, 300.0), sample_rate=8000)
    assert x8k.shape == (SAMPLE_RATE,) and abs(dominant_hz(x8k) - 300.0) < 1.0


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(0, np.float32), "audio is empty"),
        (np.zeros((10, 2, 2), np.float32), r"shape \(10, 2, 2\)"),
        (np.zeros((2, 16000), np.float32), "at most 16 channels"),
        (np.zeros(100, np.complex64), "dtype complex64 is not supported"),
        (np.full(100, 3.0, np.float32), r"must be in \[-1, 1\]"),
        (np.full(100, np.nan, np.float32), "NaN"),
    ],
)
def test_bad_arrays(audio: np.ndarray, message: str) -> None:
    with pytest.raises(AudioError, match=message):
        load_audio(audio)
    assert issubclass(AudioError, ValueError)


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="audio file not found"):
        load_audio(tmp_path / "none.wav")
    with pytest.raises(TypeError, match="audio bytes are ambiguous"):
        load_audio(b"RIFF....")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sample_rate must be a positive int"):
        load_audio(tone(0.1), sample_rate=0)
    with pytest.raises(ValueError, match="sample_rate is for arrays"):
        load_audio(write_wav(tmp_path / "a.wav", tone(0.2)), sample_rate=8000)
    cut = tmp_path / "cut.wav"
    cut.write_bytes((tmp_path / "a.wav").read_bytes()[:30])
    with pytest.raises(AudioError, match=r"cut\.wav"):
        load_audio(cut)


@pytest.mark.parametrize("rate", [0, 1, 999, 768_001, 2**32 - 1])
def test_a_sample_rate_no_audio_has_is_refused(tmp_path: Path, rate: int) -> None:
    """A WAV header's rate of 0 divided by zero and 1 Hz resampled to 16,000 times the length
    (found by the structure sweep, tools/fuzz/sweep.py): both are AudioErrors naming it."""
    data = bytearray(write_wav(tmp_path / "a.wav", tone(0.2)).read_bytes())
    struct.pack_into("<I", data, 24, rate)  # the fmt chunk's sample rate
    bad = tmp_path / "rate.wav"
    bad.write_bytes(bytes(data))
    with pytest.raises(AudioError, match=rf"rate\.wav: its sample rate of {rate} Hz is not one "
                                         r"audio has \(1000 to 768000 Hz\)"):
        load_audio(bad)
    if 0 < rate < 2**31:
        with pytest.raises(ValueError, match=rf"sample_rate must be 1000 to 768000 Hz, got {rate}"):
            load_audio(tone(0.1), sample_rate=rate)


def test_other_formats_need_soundfile(tmp_path: Path) -> None:
    path = tmp_path / "a.flac"
    path.write_bytes(b"fLaC" + bytes(100))
    try:
        import soundfile  # noqa: F401
    except ImportError:
        with pytest.raises(AudioError, match=r"pip install 'cywhisper\[audio\]'"):
            load_audio(path)
    else:
        with pytest.raises(AudioError, match="cannot decode audio"):
            load_audio(path)


def test_wav_chunk_size_past_the_end(tmp_path: Path) -> None:
    # The wave module raises a bare RuntimeError when a chunk size points past the file.
    path = write_wav(tmp_path / "a.wav", tone(0.5))
    data = bytearray(path.read_bytes())
    # (tools/fuzz wav:393) The fmt chunk's id and size overwritten: its body is then read as
    # a chunk of an unknown kind whose size goes far past the file.
    data[12:20] = (0x80000000).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="corrupt WAV file"):
        load_audio(path)
