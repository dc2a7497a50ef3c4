"""One error hierarchy for the family: ggml_family.errors' classes are the bases of every host's.

Each host's native loader refuses a broken file of its own format; one ``except
ggml_family.ModelLoadError`` catches all three, and each is its host's own class (so ``except
cywhisper.ModelLoadError`` does not catch llama.cpp's).
"""

from __future__ import annotations

from pathlib import Path

import cyllama
import cysd
import cywhisper
import ggml_family
import pytest
from tiny_llama import tiny_llama
from tiny_whisper import tiny_whisper


def _half(model: Path, out: Path) -> Path:
    out.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    return out


def test_one_except_catches_every_hosts_load_error(tmp_path: Path) -> None:
    # Files each library's own loader refuses (the Python-side checks pass them on).
    loads = {
        cyllama: lambda: cyllama.LLM(_half(tiny_llama(), tmp_path / "cut.gguf"), n_ctx=64),
        cywhisper: lambda: cywhisper.Whisper(_half(tiny_whisper(), tmp_path / "cut.bin")),
        cysd: lambda: cysd.StableDiffusion(_write(tmp_path / "bad.gguf",
                                                  b"GGUF" + b"\xff" * 60), n_threads=2),
    }
    caught: dict[str, ggml_family.ModelLoadError] = {}
    for host, load in loads.items():
        try:
            load()
        except ggml_family.ModelLoadError as e:
            caught[host.__name__] = e
    assert {name: type(e) for name, e in caught.items()} == {
        "cyllama": cyllama.ModelLoadError, "cywhisper": cywhisper.ModelLoadError,
        "cysd": cysd.ModelLoadError}
    assert "failed to load model from" in str(caught["cyllama"])
    assert len({type(e) for e in caught.values()}) == 3
    for e in caught.values():
        assert isinstance(e, ggml_family.GgmlError) and isinstance(e, RuntimeError)
    with pytest.raises(cyllama.ModelLoadError) as again:
        loads[cyllama]()
    assert not isinstance(again.value, cywhisper.ModelLoadError)  # another host's class misses it


def test_the_hosts_share_the_familys_backend_errors() -> None:
    for host in (cyllama, cywhisper, cysd):
        assert host.BackendError is ggml_family.BackendError
        assert host.PluginError is ggml_family.PluginError
        assert issubclass(host.ComputeError, ggml_family.ComputeError)
        assert host.ModelLoadError.__module__ == host.__name__
    assert cysd.Cancelled is ggml_family.Cancelled
    assert issubclass(ggml_family.PluginError, ggml_family.BackendError)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
