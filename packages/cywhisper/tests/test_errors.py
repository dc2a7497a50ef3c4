"""Bad input: every case raises a typed error naming the problem; the process survives."""

from __future__ import annotations

import math
import struct
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


# The header's int32 fields after the magic, in order (whisper.cpp's whisper_hparams).
HEADER = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
          "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")


def _with_field(model: Path, out: Path, name: str, value: int) -> Path:
    data = bytearray(model.read_bytes())
    struct.pack_into("<i", data, 4 + 4 * HEADER.index(name), value)
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("name", HEADER[:-1])
def test_a_header_count_out_of_range_names_the_field(tmp_path: Path, tiny_model: Path,
                                                     name: str) -> None:
    for value in (0, -1, 2**31 - 1, -(2**31), 1_000_000):
        bad = _with_field(tiny_model, tmp_path / f"{name}.bin", name, value)
        with pytest.raises(ModelLoadError, match=rf"invalid header: {name} is {value}, not 1 to"):
            Whisper(bad)


@pytest.mark.parametrize("ftype", [-1, 4, 5, 999, 16385, 65535, 2**20, 2**31 - 1, -(2**31)])
def test_a_header_ftype_that_is_no_ggml_file_type_is_a_load_error(tmp_path: Path,
                                                                   tiny_model: Path,
                                                                   ftype: int) -> None:
    """It used to abort the process in ggml (GGML_ASSERT(wtype != GGML_TYPE_COUNT)): a mutation
    fuzzer found ftype 16385; whisper.cpp patch 0002 checks it first."""
    bad = _with_field(tiny_model, tmp_path / "ftype.bin", "ftype", ftype)
    kind = int(math.fmod(ftype, 1000))  # whisper.cpp's ftype % GGML_QNT_VERSION_FACTOR
    with pytest.raises(ModelLoadError, match=rf"bad ftype value {kind}: the header's ftype "
                                             rf"{ftype} is not a ggml file type"):
        Whisper(bad)
    assert Whisper(tiny_model).transcribe(tone(1.0)).text is not None  # the process lives on


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
