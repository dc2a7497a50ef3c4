"""The whole family in one process, after a foreign ggml has been loaded RTLD_GLOBAL.

Another binding (llama-cpp-python, a stable-diffusion wheel ...) may have loaded its own ggml
with global symbol binding before ours. Every family package must keep using the family ggml
(the foreign one exports every name ggml declares, and aborts on any call: the family's names
carry the fingerprint, see packages/ggml-family/native/symbols.py) and share one registry, one
CPU backend and one plugin: the fake backend is loaded once and serves cyllama and cywhisper alike.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

cyllama = pytest.importorskip("cyllama")
cywhisper = pytest.importorskip("cywhisper")

from fake_plugin import build_fake_backend, plugin_env, write_plugin  # noqa: E402
from tiny_llama import tiny_llama  # noqa: E402
from tiny_whisper import tiny_whisper  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def ggml_names() -> list[str]:
    """Every name the pinned ggml declares for export, as a foreign ggml would export them."""
    import symbols  # packages/ggml-family/native: pytest's pythonpath

    ggml_dir = Path(subprocess.run([sys.executable, str(ROOT / "tools" / "upstream.py"), "path",
                                    "llama.cpp"], capture_output=True, text=True,
                                   check=True).stdout.strip()) / "ggml"
    return [*symbols.exported_names(ggml_dir), *sorted(symbols.KEEP)]


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("a C compiler is needed to build the foreign ggml")
    d = tmp_path_factory.mktemp("foreign")
    body = "".join(f'void *{name}(void) {{ die("{name}"); return 0; }}\n'
                   for name in ggml_names())
    (d / "foreign.c").write_text(
        "#include <stdio.h>\n#include <stdlib.h>\n"
        "static void die(const char *f) { fprintf(stderr, \"FOREIGN %s called\\n\", f); "
        "abort(); }\n" + body)
    lib = d / "libggml.so"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(d / "foreign.c")], check=True)
    return lib


@pytest.mark.parametrize("with_foreign", [False, True])
def test_family_with_a_foreign_ggml_and_one_plugin(foreign: Path, tmp_path: Path,
                                                    with_foreign: bool) -> None:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is needed to build the fake backend module")
    fake = build_fake_backend(Path(cyllama._core.__file__).parent / "lib")
    site = tmp_path / "site"
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    code = f"""
import ctypes, json, os, numpy as np
if {with_foreign}:
    ctypes.CDLL({str(foreign)!r}, mode=os.RTLD_NOW | ctypes.RTLD_GLOBAL)
import cyllama, cywhisper, ggml_fake_plugin
llm = cyllama.LLM({str(tiny_llama())!r}, n_ctx=64, n_threads=1)
text = llm.generate("the", max_tokens=4).text
w = cywhisper.Whisper({str(tiny_whisper())!r}, n_threads=1)
t = w.transcribe(np.sin(np.arange(32000) / 9).astype(np.float32) * 0.3, fallback=False)
a, b = cyllama.info(), cywhisper.info()
print(json.dumps({{"a": a, "b": b, "layers": llm.layer_devices, "text": text,
                   "segments": len(t.segments), "init": ggml_fake_plugin.initialized}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=plugin_env(site), timeout=300)
    assert "FOREIGN" not in out.stderr and out.returncode == 0, out.stderr
    data = json.loads(out.stdout.splitlines()[-1])
    a, b = data["a"], data["b"]
    assert a["fingerprint"] == b["fingerprint"] == fake.fingerprint
    assert [x["name"] for x in a["backends"]] == ["CPU", "FAKE"]
    assert [x["name"] for x in b["backends"]] == ["CPU", "FAKE"]
    states = sorted(p["state"] for host in (a, b) for p in host["plugins"] if p["name"] == "fake")
    assert states == ["loaded", "shared"]
    assert data["init"] == 1
    assert data["layers"] == {"FAKE0": 3} and data["text"]
    assert data["segments"] >= 1
