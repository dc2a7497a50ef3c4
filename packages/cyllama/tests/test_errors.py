"""Bad input gives a typed exception naming the problem, and the interpreter lives on."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cyllama import LLM, ContextOverflowError, Engine, ModelLoadError


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(FileNotFoundError, match="model file not found") as exc:
        LLM(missing)
    assert exc.value.filename == str(missing)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="model path is a directory"):
        LLM(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=f"model file {empty} is empty"):
        LLM(empty)


def test_not_gguf(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"PK\x03\x04" + bytes(1000))
    with pytest.raises(ModelLoadError,
                       match=r"is not a GGUF file \(it starts with b'PK\\x03\\x04'"):
        LLM(bad)


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.99])
def test_truncated(tmp_path: Path, tiny_model: Path, fraction: float) -> None:
    data = tiny_model.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ModelLoadError, match=f"failed to load model from {cut}") as exc:
        LLM(cut)
    assert "(" in str(exc.value)  # the reason ggml logged is attached


def test_corrupt_header(tmp_path: Path, tiny_model: Path) -> None:
    data = bytearray(tiny_model.read_bytes())
    data[8:16] = (2**62).to_bytes(8, "little")  # absurd tensor count
    bad = tmp_path / "corrupt.gguf"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match=f"failed to load model from {bad}"):
        LLM(bad)


def test_prompt_longer_than_context(tiny_model: Path) -> None:
    llm = LLM(tiny_model, n_ctx=16, n_threads=1)
    assert llm.n_ctx >= 16  # llama.cpp rounds the window up to its padding
    pattern = rf"prompt is \d+ tokens but the context window \(n_ctx\) is {llm.n_ctx}"
    with pytest.raises(ContextOverflowError, match=pattern):
        llm.generate("the " * (llm.n_ctx + 10))
    assert isinstance(ContextOverflowError("x"), ValueError)
    assert llm.generate("the", max_tokens=2).text  # still usable


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n_ctx": -1}, ValueError, r"n_ctx must be in \[0, 4294967295\], got -1"),
        ({"n_threads": 0}, ValueError, r"n_threads must be in \[1, 512\], got 0"),
        ({"n_batch": 0}, ValueError, "n_batch must be >= 1, got 0"),
        ({"n_ubatch": 1024}, ValueError, r"n_ubatch must be in \[1, 512\], got 1024"),
        ({"seed": -5}, ValueError, r"seed must be in \[0, 4294967295\], got -5"),
        ({"n_ctx": 1.5}, TypeError, "n_ctx must be an int, not float"),
        ({"n_threads": True}, TypeError, "n_threads must be an int, not bool"),
    ],
)
def test_bad_parameters(tiny_model: Path, kwargs: dict[str, object], error: type,
                        message: str) -> None:
    with pytest.raises(error, match=message):
        LLM(tiny_model, **kwargs)


def test_bad_max_tokens(llm: LLM) -> None:
    with pytest.raises(ValueError, match="max_tokens must be >= 0, got -3"):
        llm.generate("the", max_tokens=-3)


def test_interpreter_survives_every_bad_file(tmp_path: Path, tiny_model: Path) -> None:
    """All bad files in one fresh process, then a good generation: nothing crashed."""
    data = tiny_model.read_bytes()
    files = {"trunc": data[: len(data) // 3], "magic": b"GGUF" + bytes(7),
             "junk": b"GGUF" + bytes(range(256)) * 10, "empty": b""}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    code = f"""
import cyllama
for name in {sorted(files)!r}:
    try:
        cyllama.LLM({str(tmp_path)!r} + '/' + name)
    except cyllama.ModelLoadError as e:
        print('error', name)
print(repr(cyllama.LLM({str(tiny_model)!r}, n_ctx=64).generate('the', max_tokens=3).text))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:4] == [f"error {n}" for n in sorted(files)]
    assert len(lines) == 5 and lines[4] not in ("''", "")


def test_duplicate_vocabulary_entry(tmp_path: Path, tiny_model: Path) -> None:
    """Two tokens with the same text (a flipped bit can do it) used to abort the interpreter
    inside llama.cpp (GGML_ASSERT); now a ModelLoadError saying so (tools/patches/llama.cpp)."""
    data = tiny_model.read_bytes()
    assert data.count(b"<0x42>") == 1
    bad = tmp_path / "dup.gguf"
    bad.write_bytes(data.replace(b"<0x42>", b"<0x41>"))
    code = f"""
import cyllama
try:
    cyllama.LLM({str(bad)!r})
except cyllama.ModelLoadError as e:
    print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "the vocabulary has 696 tokens but 695 distinct texts" in out.stdout


# -- sizes that could never fit: refused before anything is allocated --------------------------

@pytest.mark.parametrize("n_ctx", [64, 512, 1000])
def test_kv_estimate_is_what_llama_cpp_allocates(tiny_model: Path, n_ctx: int,
                                                  kv_cache_logged: Callable[[], float]) -> None:
    with LLM(tiny_model, n_ctx=n_ctx, n_threads=1) as llm:
        estimate = llm.model.core.kv_cache_bytes(n_ctx, 1, 512) / 2**20
    padded = -(-n_ctx // 256) * 256 / n_ctx  # llama.cpp pads the cell count to 256
    assert kv_cache_logged() == pytest.approx(estimate * padded, abs=0.01)


def test_absurd_n_ctx_is_refused_before_allocation(tiny_model: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"a context of 4294967295 tokens \(n_ctx\) needs "
                                         r"[0-9.]+ GiB for its KV cache, more than the [0-9.]+ "
                                         r"GiB of memory this machine has"):
        LLM(tiny_model, n_ctx=2**32 - 1, n_threads=1)
    with pytest.raises(ValueError, match="n_ctx must be"):
        LLM(tiny_model, n_ctx=2**32)
    assert time.monotonic() - start < 10


def test_absurd_training_context_is_refused_with_n_ctx_0(tmp_path: Path) -> None:
    # A file that claims a 4-billion-token training context: n_ctx=0 takes it at its word.
    from tiny_llama import CONFIG, write
    path = write(tmp_path / "huge-context.gguf", {**CONFIG, "n_ctx": 2**31 - 1})
    with pytest.raises(ValueError, match=r"\(the model's training context \(n_ctx=0\)\) needs"):
        LLM(path, n_ctx=0, n_threads=1)
    with LLM(path, n_ctx=64, n_threads=1) as llm:  # the rest of the file is fine
        assert llm.generate("the", max_tokens=2).text


def test_invalid_training_context_with_n_ctx_0(tmp_path: Path) -> None:
    from tiny_llama import CONFIG, write
    path = write(tmp_path / "negative-context.gguf", {**CONFIG, "n_ctx": 2**32 - 1})
    with pytest.raises(ModelLoadError, match=r"n_ctx=0 takes the model's training context, "
                                             r"but .*negative-context\.gguf says -1 tokens"):
        LLM(path, n_ctx=0, n_threads=1)


def _with_value(model: Path, out: Path, key: str, value: float) -> Path:
    """A copy of ``model`` whose scalar metadata ``key`` holds ``value`` (same type, in place)."""
    import gguf

    out.write_bytes(model.read_bytes())
    reader = gguf.GGUFReader(out, "r+")
    field = reader.fields[key]
    field.parts[field.data[0]][0] = value
    reader.data.flush()
    del reader
    return out


@pytest.mark.parametrize("value", [0, 513, 2**31, 2**32 - 1])
def test_a_block_count_out_of_range_names_the_key(tmp_path: Path, tiny_model: Path,
                                                  value: int) -> None:
    """0 layers or more than LLAMA_MAX_LAYERS (512) aborted in llama.cpp's loader
    (GGML_ASSERT); llama.cpp patch 0007 makes it a load error."""
    bad = _with_value(tiny_model, tmp_path / "layers.gguf", "llama.block_count", value)
    with pytest.raises(ModelLoadError, match=rf"llama\.block_count = {value} is out of range: "
                                             r"a model has 1 to 512 layers"):
        LLM(bad, n_threads=1)
    with LLM(tiny_model, n_ctx=64, n_threads=1) as llm:  # the process lives on
        assert llm.generate("the", max_tokens=2).text


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("-inf"), float("inf")])
def test_a_norm_epsilon_that_is_negative_or_not_finite_names_the_key(
        tmp_path: Path, tiny_model: Path, value: float) -> None:
    """ggml's RMS norm asserts eps >= 0 when it computes: the first decode aborted (found by
    the sweep, tools/fuzz/sweep.py); llama.cpp patch 0007 refuses it at load."""
    key = "llama.attention.layer_norm_rms_epsilon"
    bad = _with_value(tiny_model, tmp_path / "eps.gguf", key, value)
    with pytest.raises(ModelLoadError, match=rf"{re.escape(key)} = \S+ is not a finite, "
                                             r"non-negative epsilon"):
        LLM(bad, n_threads=1)


def test_absurd_engine_size_is_refused(llm: LLM) -> None:
    with pytest.raises(ValueError, match=r"\(n_ctx per sequence x n_parallel\) for 256 "
                                         r"sequences needs"):
        Engine(llm, n_parallel=256, n_ctx=(2**32 - 1) // 256)
    with pytest.raises(ValueError, match="n_ctx must be"):
        Engine(llm, n_parallel=2, n_ctx=2**31)


def test_undecodable_bytes_in_a_message(tmp_path: Path, tiny_model: Path) -> None:
    """Error messages quote what llama.cpp logged, bytes of the file included: bytes that are
    not UTF-8 become U+FFFD, not a UnicodeDecodeError in place of the load error."""
    data = tiny_model.read_bytes()
    key = len(b"general.architecture").to_bytes(8, "little") + b"general.architecture"
    arch = key + (8).to_bytes(4, "little") + (5).to_bytes(8, "little")  # a 5-byte string
    assert data.count(arch + b"llama") == 1
    bad = tmp_path / "bad-arch.gguf"
    bad.write_bytes(data.replace(arch + b"llama", arch + b"\xffllam"))
    with pytest.raises(ModelLoadError, match="unknown model architecture: '\ufffdllam'"):
        LLM(bad)


def test_undecodable_metadata_is_shown(tmp_path: Path, tiny_model: Path) -> None:
    data = tiny_model.read_bytes()
    assert data.count(b"tiny-random-llama") == 1  # general.name
    odd = tmp_path / "odd-name.gguf"
    odd.write_bytes(data.replace(b"tiny-random-llama", b"tiny-random-\xff\xfeama"))
    with LLM(odd, n_ctx=64) as llm:
        assert llm.metadata["general.name"] == "tiny-random-\ufffd\ufffdama"
        assert llm.generate("the", max_tokens=2).tokens  # the model itself is fine
