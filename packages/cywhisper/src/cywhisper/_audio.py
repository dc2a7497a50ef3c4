"""Audio input: WAV files through the standard library, other formats through soundfile, NumPy
arrays; everything becomes 16 kHz mono float32 in [-1, 1], as whisper.cpp expects.

Arrays are float (in [-1, 1]) or int16, shaped (samples,) or (samples, channels); channels are
averaged. A sample rate other than 16 kHz is resampled (band-limited, by FFT): pass it with
``sample_rate=``.
"""

from __future__ import annotations

import importlib
import os
import struct
import wave
from pathlib import Path
from typing import Any

import numpy as np
from ggml_family.checks import read_head

from ._errors import AudioError

__all__ = ["SAMPLE_RATE", "AudioInput", "load_audio"]

SAMPLE_RATE = 16000
# The sample rates audio may have (telephony's 8 kHz and below, studio rates up to 768 kHz): a
# file claiming 1 Hz would be resampled to 16,000 times its length, and 0 Hz divide by zero.
MIN_RATE, MAX_RATE = 1000, 768_000
AudioInput = str | os.PathLike[str] | np.ndarray


def _resample(x: np.ndarray, rate: int) -> np.ndarray:
    if rate == SAMPLE_RATE:
        return x
    n_out = round(len(x) * SAMPLE_RATE / rate)
    if n_out < 1:
        raise AudioError(f"audio of {len(x)} samples at {rate} Hz is empty at 16 kHz")
    spectrum = np.fft.rfft(x.astype(np.float64))
    keep = n_out // 2 + 1
    out = np.zeros(keep, dtype=np.complex128)
    m = min(keep, len(spectrum))
    out[:m] = spectrum[:m]
    return (np.fft.irfft(out, n_out) * (n_out / len(x))).astype(np.float32)


_INT_SCALE = {np.dtype(np.int16): (0.0, 32768.0), np.dtype(np.int32): (0.0, 2147483648.0),
              np.dtype(np.uint8): (128.0, 128.0)}  # (offset, scale) to [-1, 1]


def _from_array(a: np.ndarray, rate: int) -> np.ndarray:
    if a.ndim == 2 and a.shape[1] > 16:
        raise AudioError(f"audio array of shape {a.shape}: 2-D audio must be (samples, "
                         "channels) with at most 16 channels")
    if a.ndim not in (1, 2):
        raise AudioError(f"audio array of shape {a.shape}: expected (samples,) or "
                         "(samples, channels)")
    floating = np.issubdtype(a.dtype, np.floating)
    if a.dtype in _INT_SCALE:
        offset, scale = _INT_SCALE[a.dtype]
        x = ((a.astype(np.float64) - offset) / scale).astype(np.float32)
    elif floating:
        x = a.astype(np.float32)
    else:
        raise AudioError(f"audio array dtype {a.dtype} is not supported (float32/float64 in "
                         "[-1, 1], int16, int32 or uint8)")
    if x.ndim == 2:
        x = x.mean(axis=1)
    if floating:
        if not np.all(np.isfinite(x)):
            raise AudioError("audio array contains NaN or infinite samples")
        peak = float(np.abs(x).max()) if x.size else 0.0
        if peak > 1.0 + 1e-3:
            raise AudioError(f"float audio must be in [-1, 1], its peak is {peak:.3g} (int16 "
                             "samples? pass them as an int16 array)")
    if x.size == 0:
        raise AudioError("audio is empty")
    return np.ascontiguousarray(_resample(x, rate), dtype=np.float32)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except wave.Error as e:
        if "unknown format: 3" in str(e):  # IEEE float WAV: the wave module reads PCM only
            return _read_float_wav(path)
        raise AudioError(f"{path}: not a readable WAV file ({e})") from None
    except EOFError:
        raise AudioError(f"{path}: truncated WAV file") from None
    except (RuntimeError, struct.error, OverflowError):  # wave's chunk reader on bad sizes
        raise AudioError(f"{path}: corrupt WAV file (a chunk size points outside the file)"
                         ) from None
    if width == 3:  # 24-bit: widen to int32
        b = np.frombuffer(frames, dtype=np.uint8).reshape(-1, 3)
        data = (b[:, 0].astype(np.int32) << 8 | b[:, 1].astype(np.int32) << 16
                | b[:, 2].astype(np.int32) << 24)
    else:
        dtype: Any = {1: np.uint8, 2: np.dtype("<i2"), 4: np.dtype("<i4")}.get(width)
        if dtype is None:
            raise AudioError(f"{path}: {8 * width}-bit WAV samples are not supported")
        data = np.frombuffer(frames, dtype=dtype)
    data = data[: len(data) - len(data) % channels].reshape(-1, channels)
    return data.astype(data.dtype.newbyteorder("=")), rate


def _read_float_wav(path: Path) -> tuple[np.ndarray, int]:
    raw = path.read_bytes()
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], struct.unpack("<I", raw[pos + 4:pos + 8])[0]
        body = raw[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise AudioError(f"{path}: WAV fmt chunk of {len(body)} bytes (16 needed)")
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise AudioError(f"{path}: WAV file without fmt or data chunk")
    _, channels, rate, _, _, bits = fmt
    if channels == 0:
        raise AudioError(f"{path}: WAV file with 0 channels")
    dtype = {32: "<f4", 64: "<f8"}.get(bits)
    if dtype is None:
        raise AudioError(f"{path}: {bits}-bit float WAV is not supported")
    x = np.frombuffer(data[: len(data) - len(data) % (bits // 8 * channels)], dtype=dtype)
    return x.reshape(-1, channels).astype(np.float32), rate


def load_audio(source: AudioInput, sample_rate: int | None = None) -> np.ndarray:
    """16 kHz mono float32 samples of ``source`` (a path, or an array at ``sample_rate``)."""
    if isinstance(source, np.ndarray):
        rate = SAMPLE_RATE if sample_rate is None else sample_rate
        if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
            raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
        if not MIN_RATE <= rate <= MAX_RATE:
            raise ValueError(f"sample_rate must be {MIN_RATE} to {MAX_RATE} Hz, got {rate}")
        return _from_array(source, rate)
    if isinstance(source, bytes | bytearray | memoryview):
        raise TypeError("audio bytes are ambiguous: pass a path, or a NumPy array of samples")
    if not isinstance(source, str | os.PathLike):
        raise TypeError(f"audio must be a path or a NumPy array, not {type(source).__name__}")
    if sample_rate is not None:
        raise ValueError("sample_rate is for arrays; a file says its own rate")
    path, head = read_head(source, "audio")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        data, rate = _read_wav(path)
    else:
        try:
            soundfile = importlib.import_module("soundfile")
        except ImportError:
            raise AudioError(
                f"{path} is not a WAV file; other formats need the optional decoder soundfile: "
                "pip install 'cywhisper[audio]' (or convert the file to WAV)") from None
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except Exception as e:  # soundfile raises its own LibsndfileError (a RuntimeError)
            raise AudioError(f"{path}: cannot decode audio ({e})") from None
    if not MIN_RATE <= int(rate) <= MAX_RATE:
        raise AudioError(f"{path}: its sample rate of {int(rate)} Hz is not one audio has "
                         f"({MIN_RATE} to {MAX_RATE} Hz): a corrupt header?")
    return _from_array(data, int(rate))
