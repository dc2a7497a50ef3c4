"""What ggml-vulkan-plugin does on its own, whichever host loads it, on Mesa's lavapipe
(tools/fixtures/vulkan_plugin.py): with no visible device it registers none and warns once, with
no Vulkan loader it declines with one warning naming the package to install; work stays on the
CPU, and a GPU asked for explicitly is an error. cyllama is the host here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vulkan_plugin import CYLLAMA_RUNS, run_cyllama, vulkan_site


@pytest.fixture(scope="module")
def site() -> Path | None:
    return vulkan_site()


def test_no_device_one_warning_and_the_cpu(tiny_model: Path, site: Path | None) -> None:
    # An empty GGML_VK_VISIBLE_DEVICES hides every device: the module loads and registers none.
    out = run_cyllama(tiny_model, site, [("default", None), ("asked", -1)],
                      GGML_VK_VISIBLE_DEVICES="")
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
    code = CYLLAMA_RUNS.replace("import json, warnings, cyllama", "import json, warnings, cyllama\n"
                                "import ggml_vulkan_plugin as p\n"
                                "p._names = lambda: ('libggml-vulkan.so', 'libvulkan-absent.so.1')")
    out = run_cyllama(tiny_model, site, [("default", None)], code)
    (vulkan,) = [p for p in out["plugins"] if p["name"] == "vulkan"]
    assert vulkan["state"] == "failed"
    assert out["default"]["layers"] == {"CPU": 3}
    (warning,) = out["warnings"]
    assert "ggml plugin 'vulkan' (ggml-vulkan-plugin) could not be loaded" in warning
    assert "the Vulkan loader libvulkan-absent.so.1 is not installed" in warning
    assert "apt-get install libvulkan1 mesa-vulkan-drivers" in warning
