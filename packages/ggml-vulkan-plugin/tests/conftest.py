"""The Vulkan plugin's own tests: what it does whichever host loads it (no device, no Vulkan
loader), shown through cyllama as the host on Mesa's lavapipe. Each host's own results on
the Vulkan device are in its tests/test_vulkan_plugin.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_llama import tiny_llama


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return tiny_llama()
