"""The real ggml-vulkan-plugin on Mesa's lavapipe (tools/fixtures/vulkan_plugin.py).

Every test runs fresh interpreters with the plugin on PYTHONPATH, as pip would have installed it.
The tiny model's greedy tokens with every layer on the Vulkan device must equal the CPU's.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tools" / "fixtures"))
from vulkan_plugin import lavapipe_env, run_json, vulkan_site


@pytest.fixture(scope="module")
def site() -> Path | None:
    return vulkan_site()


RUN = """
import json, warnings, cyllama
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    info = cyllama.info()
    out = {{"plugins": info["plugins"], "backends": info["backends"]}}
    for name, ngl in {runs!r}:
        try:
            llm = cyllama.LLM({model!r}, n_ctx=128, n_threads=2, n_gpu_layers=ngl)
        except Exception as exc:
            out[name] = {{"error": f"{{type(exc).__name__}}: {{exc}}"}}
            continue
        r = llm.generate("The capital of France is", max_tokens=12,
                         sampling=cyllama.Sampling.GREEDY)
        out[name] = {{"layers": llm.layer_devices, "tokens": list(r.tokens), "text": r.text,
                      "ngl": llm.n_gpu_layers}}
        llm.close()
out["warnings"] = [str(w.message) for w in caught]
print(json.dumps(out))
"""


def run(model: Path, site: Path | None, runs: list[tuple[str, int | None]], **env: str) -> Any:
    return run_json(RUN.format(model=str(model), runs=runs), lavapipe_env(site, **env))


@pytest.mark.smoke
def test_every_layer_on_vulkan_gives_the_cpu_tokens(tiny_model: Path, site: Path | None) -> None:
    out = run(tiny_model, site, [("cpu", 0), ("default", None), ("split", 1)])
    (vulkan,) = [p for p in out["plugins"] if p["name"] == "vulkan"]
    assert vulkan["state"] == "loaded", vulkan
    assert vulkan["distribution"] == "ggml-vulkan-plugin"
    (backend,) = [b for b in out["backends"] if b["name"] == "Vulkan"]
    assert [d["name"] for d in backend["devices"]] == ["Vulkan0"]
    assert out["warnings"] == []
    # A registered GPU device: the default offloads every layer, and it runs there.
    assert out["default"]["ngl"] == -1
    assert out["default"]["layers"] == {"Vulkan0": 3}
    assert out["cpu"]["layers"] == {"CPU": 3}
    assert len(out["cpu"]["tokens"]) == 12
    assert out["default"]["tokens"] == out["cpu"]["tokens"]
    # n_gpu_layers=1: the last layer on the device, the others on the CPU, same tokens.
    assert out["split"]["layers"] == {"CPU": 2, "Vulkan0": 1}
    assert out["split"]["tokens"] == out["cpu"]["tokens"]


def test_no_device_one_warning_and_the_cpu(tiny_model: Path, site: Path | None) -> None:
    # An empty GGML_VK_VISIBLE_DEVICES hides every device: the module loads and registers none.
    out = run(tiny_model, site, [("default", None), ("asked", -1)], GGML_VK_VISIBLE_DEVICES="")
    (vulkan,) = [p for p in out["plugins"] if p["name"] == "vulkan"]
    assert vulkan["state"] == "no-device"
    assert out["default"]["layers"] == {"CPU": 3}
    (warning,) = out["warnings"]
    assert "ggml plugin 'vulkan' (ggml-vulkan-plugin) found no device" in warning
    assert "GGML_VK_VISIBLE_DEVICES" in warning and "Vulkan driver" in warning
    # A GPU asked for explicitly while none is registered is an error, never a silent CPU run.
    assert out["asked"]["error"].startswith("BackendError: n_gpu_layers=-1 asks for a GPU")
    assert "vulkan: no-device" in out["asked"]["error"]


def test_no_vulkan_loader_one_warning_naming_it(tiny_model: Path, site: Path | None) -> None:
    # The loader's name made unfindable, as on a machine without a Vulkan driver.
    code = RUN.replace("import json, warnings, cyllama", "import json, warnings, cyllama\n"
                       "import ggml_vulkan_plugin as p\n"
                       "p._names = lambda: ('libggml-vulkan.so', 'libvulkan-absent.so.1')")
    out = run_json(code.format(model=str(tiny_model), runs=[("default", None)]),
                   lavapipe_env(site))
    (vulkan,) = [p for p in out["plugins"] if p["name"] == "vulkan"]
    assert vulkan["state"] == "failed"
    assert out["default"]["layers"] == {"CPU": 3}
    (warning,) = out["warnings"]
    assert "ggml plugin 'vulkan' (ggml-vulkan-plugin) could not be loaded" in warning
    assert "the Vulkan loader libvulkan-absent.so.1 is not installed" in warning
    assert "apt-get install libvulkan1 mesa-vulkan-drivers" in warning
