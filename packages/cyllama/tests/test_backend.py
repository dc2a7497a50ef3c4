"""The family ggml inside the wheel: fingerprint, CPU module choice, one CPU backend."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cyllama
import pytest
from cyllama import _core


@pytest.mark.smoke
def test_fingerprint_is_exposed_and_in_library_names() -> None:
    fp = _core.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{12}", fp)
    libdir = Path(_core.__file__).parent / "lib"
    assert (libdir / f"libggml-base-{fp}.so").is_file()
    assert (libdir / f"libggml-{fp}.so").is_file()
    assert cyllama.info()["fingerprint"] == fp


def test_soname_carries_fingerprint() -> None:
    fp = _core.fingerprint()
    lib = Path(_core.__file__).parent / "lib" / f"libggml-base-{fp}.so"
    # The dynamic section's SONAME string is stored in the file; readelf may be absent.
    assert f"libggml-base-{fp}.so".encode() in lib.read_bytes()


def test_exactly_one_cpu_backend_registered() -> None:
    names = [b["name"] for b in _core.backends()]
    assert names.count("CPU") == 1
    cpu = next(b for b in _core.backends() if b["name"] == "CPU")
    assert [d["type"] for d in cpu["devices"]] == ["cpu"]


@pytest.mark.smoke
def test_best_scoring_cpu_module_is_loaded() -> None:
    data = cyllama.info()
    scores = data["cpu_scores"]
    assert isinstance(scores, dict) and scores
    chosen = data["cpu_module"]
    assert isinstance(chosen, str)
    variant = chosen.removeprefix("libggml-cpu").removesuffix(".so").lstrip("-") or "default"
    assert scores[variant] == max(scores.values()) > 0
    assert data["cpu_module_loaded_by"] == "cyllama"


def test_registration_is_idempotent() -> None:
    import ggml_family

    again = ggml_family.register(_core, "cyllama", cyllama.__version__)
    assert again is cyllama._host is ggml_family.host("cyllama")
    assert again.load() is again
    assert [b["name"] for b in _core.backends()].count("CPU") == 1


def _variants() -> dict[str, int]:
    """The CPU modules' scores; skips a build with one module (GGML_FAMILY_CPU=host, as in
    nox -s sanitize), where there is no variant to choose."""
    scores = cyllama.info()["cpu_scores"]
    assert isinstance(scores, dict)
    if len(scores) < 2:
        pytest.skip(f"one CPU module in this build ({scores}): no variants")
    return scores


def test_forced_cpu_variant_and_unknown_variant() -> None:
    code = "import cyllama; print(cyllama.info()['cpu_module'])"
    scores = _variants()
    runnable = sorted(v for v, s in scores.items() if s > 0)
    # A bare environment, but for the sanitizer runtime's (nox -s sanitize) own variables.
    env = {k: v for k, v in os.environ.items() if k in ("LD_PRELOAD", "ASAN_OPTIONS",
                                                          "UBSAN_OPTIONS")}
    env.update({"CYLLAMA_CPU_VARIANT": runnable[0], "PATH": ""})
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert runnable[0] in out.stdout
    env["CYLLAMA_CPU_VARIANT"] = "no-such-cpu"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "CYLLAMA_CPU_VARIANT='no-such-cpu' names no CPU module" in out.stderr


@pytest.mark.smoke
def test_exported_symbols_of_extension() -> None:
    """The extension exports only PyInit__core (checked on the ELF dynamic symbol table)."""
    nm = subprocess.run(["nm", "-D", "--defined-only", _core.__file__],
                        capture_output=True, text=True)
    if nm.returncode != 0:  # pragma: no cover - binutils missing
        pytest.skip("nm is not available")
    symbols = [line.split()[-1] for line in nm.stdout.splitlines() if line.strip()]
    assert symbols == ["PyInit__core"]


def test_every_cpu_variant_that_scores_runs_int8_kernels() -> None:
    """Each CPU module the scorer calls runnable here really runs a quantized prompt: Q8_0
    weights take the int8 kernels (VNNI, AMX tiles) where they exist. On a Sapphire Rapids the
    pinned AMX code used to die with SIGILL (tools/patches/llama.cpp/0001)."""
    from tiny_llama import tiny_llama

    model = tiny_llama(q8_0=True)
    scores = _variants()
    runnable = sorted(v for v, s in scores.items() if s > 0)
    code = (f"import cyllama; llm = cyllama.LLM({str(model)!r}, n_ctx=128, n_threads=2); "
            "print(cyllama.info()['cpu_module']); "
            "print(repr(llm.generate('The capital of France is the city of', max_tokens=6).text))")
    for variant in runnable:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "CYLLAMA_CPU_VARIANT": variant}, timeout=120)
        assert out.returncode == 0, f"{variant}: exit {out.returncode}\n{out.stderr[-2000:]}"
        module, text = out.stdout.splitlines()[-2:]
        assert variant in module and len(text) > 2, (variant, out.stdout)
