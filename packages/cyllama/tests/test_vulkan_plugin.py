"""The real ggml-vulkan-plugin on Mesa's lavapipe (tools/fixtures/vulkan_plugin.py).

Every test runs fresh interpreters with the plugin on PYTHONPATH, as pip would have installed it.
The tiny model's greedy tokens with every layer on the Vulkan device must equal the CPU's. What
the plugin does on its own (no device, no loader) is tested in packages/ggml-vulkan-plugin/tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vulkan_plugin import run_cyllama, vulkan_site


@pytest.fixture(scope="module")
def site() -> Path | None:
    return vulkan_site()


@pytest.mark.smoke
def test_every_layer_on_vulkan_gives_the_cpu_tokens(tiny_model: Path, site: Path | None) -> None:
    out = run_cyllama(tiny_model, site, [("cpu", 0), ("default", None), ("split", 1)])
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
