"""Bad input: every case raises a typed error naming the problem; the process survives."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import tone
from cywhisper import AudioError, ModelLoadError, Whisper


def test_missing_and_bad_model_files(tmp_path: Path, tiny_model: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model file not found"):
        Whisper(tmp_path / "none.bin")
    with pytest.raises(IsADirectoryError):
        Whisper(tmp_path)
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="is empty"):
        Whisper(empty)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelLoadError, match=r"llama\.cpp model, not whisper\.cpp"):
        Whisper(gguf)
    data = tiny_model.read_bytes()
    vocab = 4 + 44 + 8 + 80 * 201 * 4 + 4  # magic, hyper-parameters, mel filters, count
    for cut in (8, 200, vocab + 3000, len(data) // 2, len(data) - 10):
        truncated = tmp_path / f"cut{cut}.bin"
        truncated.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError, match=r"is truncated|failed to load Whisper model"):
            Whisper(truncated)
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(data[:4] + b"\xff" * 44 + data[48:])  # absurd hyper-parameters
    with pytest.raises(ModelLoadError):
        Whisper(corrupt)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"beam_size": 0}, ValueError, "beam_size must be in"),
        ({"temperature": 1.5}, ValueError, "temperature must be in"),
        ({"language": 3}, TypeError, "language must be a str"),
        ({"max_segment_chars": 0}, ValueError, "max_segment_chars must be >= 1"),
        ({"initial_prompt": 5}, TypeError, "initial_prompt must be a str"),
    ],
)
def test_bad_parameters(whisper: Whisper, kwargs: dict[str, object], error: type[Exception],
                        message: str) -> None:
    with pytest.raises(error, match=message):
        whisper.transcribe(tone(1.0), **kwargs)  # type: ignore[arg-type]


def test_bad_audio(whisper: Whisper, tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="at least 100 ms"):
        whisper.transcribe(tone(0.05))
    with pytest.raises(AudioError, match="audio is empty"):
        whisper.transcribe(tone(0.0))
    with pytest.raises(FileNotFoundError, match="VAD model file not found"):
        whisper.transcribe(tone(1.0), vad=tmp_path / "vad.bin")
    with pytest.raises(ValueError, match="n_threads must be in"):
        Whisper(whisper.path, n_threads=0)
    assert whisper.transcribe(tone(1.0), fallback=False).segments


def test_heads_that_do_not_divide_the_width(tmp_path: Path, tiny_model: Path) -> None:
    # One flipped bit in n_text_head (found by tools/fuzz) made whisper.cpp abort in a reshape.
    data = bytearray(tiny_model.read_bytes())
    data[0x20] ^= 0x01
    bad = tmp_path / "heads.bin"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="text width 64 is not a multiple of its 3 heads"):
        Whisper(bad)
