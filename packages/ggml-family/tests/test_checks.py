"""The argument checks every family API uses: exact exception types and messages."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from ggml_family.checks import (
    check_choice,
    check_float,
    check_int,
    check_model_file,
    check_threads,
    read_head,
)


class ModelLoadError(RuntimeError):
    pass


@pytest.mark.smoke
def test_check_int() -> None:
    assert check_int("n", 3, 0, 5) == 3
    with pytest.raises(TypeError, match=r"^n must be an int, not bool$"):
        check_int("n", True, 0)
    with pytest.raises(TypeError, match=r"^n must be an int, not float$"):
        check_int("n", 1.0, 0)
    with pytest.raises(ValueError, match=r"^n must be >= 1, got 0$"):
        check_int("n", 0, 1)
    with pytest.raises(ValueError, match=r"^n must be in \[1, 4\], got 5$"):
        check_int("n", 5, 1, 4)


@pytest.mark.parametrize(("kwargs", "value", "message"), [
    ({"low": 0, "high": 1}, 1.5, "top_p must be in [0, 1], got 1.5"),
    ({"low": 0, "high": 1, "low_open": True}, 0, "top_p must be in (0, 1], got 0"),
    ({"low": 0}, -0.5, "top_p must be >= 0, got -0.5"),
    ({"low": 0, "low_open": True}, 0.0, "top_p must be > 0, got 0.0"),
    ({"high": 2}, 3, "top_p must be <= 2, got 3"),
    ({}, math.nan, "top_p must be finite, got nan"),
    ({"low": 0, "high": 1}, math.inf, "top_p must be in [0, 1], got inf"),
    ({"low": 0}, math.nan, "top_p must be >= 0, got nan"),
])
def test_check_float_ranges(kwargs: dict[str, float], value: float, message: str) -> None:
    with pytest.raises(ValueError, match=r"^top_p must be ") as e:
        check_float("top_p", value, **kwargs)  # type: ignore[arg-type]
    assert str(e.value) == message


def test_check_float_types_and_values() -> None:
    assert check_float("x", 1) == 1.0 and isinstance(check_float("x", 1), float)
    assert check_float("x", 0.0, 0, 1) == 0.0
    assert check_float("x", -1e300) == -1e300
    for bad in (True, "0.5", None, [1.0]):
        with pytest.raises(TypeError, match=r"^x must be a number, not "):
            check_float("x", bad)


def test_check_choice() -> None:
    assert check_choice("sampler", "euler", ("euler", "lcm")) == "euler"
    with pytest.raises(ValueError, match=r"^unknown sampler 'eul'; known: euler, lcm$"):
        check_choice("sampler", "eul", ("euler", "lcm"))
    with pytest.raises(TypeError, match=r"^sampler must be a str, not int$"):
        check_choice("sampler", 3, ("euler",))


def test_check_threads() -> None:
    assert check_threads("n_threads", 3) == 3
    assert check_threads("n_threads", None) >= 1
    with pytest.raises(ValueError, match=r"^n_threads must be in \[1, 512\], got 0$"):
        check_threads("n_threads", 0)


def test_read_head_and_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as nf:
        read_head(tmp_path / "none.bin", "audio")
    assert nf.value.filename == str(tmp_path / "none.bin")
    assert nf.value.strerror == "audio file not found"
    with pytest.raises(IsADirectoryError, match="model path is a directory"):
        read_head(tmp_path, "model")
    with pytest.raises(TypeError, match=r"^model path must be a str or os.PathLike, not int$"):
        read_head(3, "model")  # type: ignore[arg-type]
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF\x03\x00")
    assert read_head(f, "model", 4) == (f, b"GGUF")
    assert check_model_file(str(f), magic=b"GGUF", kind="GGUF file", error=ModelLoadError) == f
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=f"^model file {empty} is empty$"):
        check_model_file(empty, magic=b"GGUF", kind="GGUF file", error=ModelLoadError)
    other = tmp_path / "other.bin"
    other.write_bytes(b"lmgg....")
    with pytest.raises(ModelLoadError) as e:
        check_model_file(other, magic=b"GGUF", kind="GGUF file", error=ModelLoadError,
                         what="LoRA adapter", hints={b"lmgg": " (a whisper.cpp model?)"})
    assert str(e.value) == (f"LoRA adapter file {other} is not a GGUF file (it starts with "
                            "b'lmgg', not b'GGUF') (a whisper.cpp model?)")


def test_check_settings() -> None:
    """A settings object, its default, and keyword overrides checked again by the class."""
    from dataclasses import dataclass

    from ggml_family.checks import check_settings

    @dataclass(frozen=True)
    class Decoding:
        beams: int = 1

        def __post_init__(self) -> None:
            check_int("beams", self.beams, 1, 8)

    assert check_settings("decoding", None, Decoding, {}) == Decoding()
    fixed = Decoding(beams=2)
    assert check_settings("decoding", fixed, Decoding, {}) is fixed
    assert check_settings("decoding", None, Decoding, {}, default=fixed) is fixed
    assert check_settings("decoding", fixed, Decoding, {"beams": 4}) == Decoding(beams=4)
    with pytest.raises(ValueError, match=r"^beams must be in \[1, 8\], got 9$"):
        check_settings("decoding", fixed, Decoding, {"beams": 9})
    with pytest.raises(TypeError, match="unexpected keyword argument 'beam'"):
        check_settings("decoding", None, Decoding, {"beam": 2})
    with pytest.raises(TypeError, match=r"^decoding must be a test_checks\.Decoding, not dict$"):
        check_settings("decoding", {"beams": 2}, Decoding, {})  # type: ignore[arg-type]
