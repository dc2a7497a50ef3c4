"""The CUDA plugins' own tests: what the plugins do whichever host loads them (the driver and
GPU checks before loading, the choice between the two builds, the no-device warning), shown
through cyllama as the host. Each host's own GPU results are in its tests/test_cuda_plugin.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_llama import tiny_llama


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    return tiny_llama()
