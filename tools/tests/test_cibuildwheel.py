"""The cibuildwheel configurations are valid (cibuildwheel cannot build here: no docker).

cibuildwheel itself reads each configuration (it rejects unknown or misspelt options) and lists
the wheels it would build on each platform; the options' values are checked against the JSON
schema cibuildwheel ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

cibuildwheel = pytest.importorskip("cibuildwheel")
jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[2]
HOSTS_CONFIG = "tools/release/cibuildwheel-hosts.toml"
CUDA12, CUDA13 = "packages/ggml-cuda-plugin/cuda12", "packages/ggml-cuda-plugin/cuda13"
ROCM = "packages/ggml-cuda-plugin/cibuildwheel-rocm.toml"
VULKAN = "packages/ggml-vulkan-plugin"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def identifiers(package: str, platform: str, config: str | None = None) -> list[str]:
    args = [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers",
            "--platform", platform, *(["--config-file", config] if config else []), package]
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.parametrize("package", ["packages/cyllama", "packages/cywhisper"])
def test_hosts(package: str) -> None:
    assert identifiers(package, "linux", HOSTS_CONFIG) == [
        "cp310-manylinux_x86_64", "cp311-manylinux_x86_64", "cp312-manylinux_x86_64",
        "cp310-manylinux_aarch64", "cp311-manylinux_aarch64", "cp312-manylinux_aarch64"]
    assert identifiers(package, "macos", HOSTS_CONFIG) == [
        "cp310-macosx_arm64", "cp311-macosx_arm64", "cp312-macosx_arm64"]
    assert identifiers(package, "windows", HOSTS_CONFIG) == [
        "cp310-win_amd64", "cp311-win_amd64", "cp312-win_amd64"]


def test_cuda_plugins_one_wheel_linux_x86_64() -> None:
    assert identifiers(CUDA12, "linux") == ["cp312-manylinux_x86_64"]
    assert identifiers(CUDA13, "linux") == ["cp312-manylinux_x86_64"]
    assert identifiers(CUDA13, "linux", ROCM) == [
        "cp312-manylinux_x86_64"]


def test_vulkan_plugin_one_wheel_per_platform() -> None:
    assert identifiers(VULKAN, "linux") == ["cp312-manylinux_x86_64"]
    assert identifiers(VULKAN, "windows") == ["cp312-win_amd64"]


def test_a_misspelt_option_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text((ROOT / HOSTS_CONFIG).read_text().replace("test-command", "test-comand"))
    args = [sys.executable, "-m", "cibuildwheel", "--print-build-identifiers", "--platform",
            "linux", "--config-file", str(config), "packages/cyllama"]
    out = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode != 0 and "test-comand" in out.stderr


@pytest.mark.parametrize("config", [HOSTS_CONFIG, f"{CUDA12}/pyproject.toml",
                                    f"{CUDA13}/pyproject.toml", ROCM,
                                    f"{VULKAN}/pyproject.toml"])
def test_values_match_the_schema(config: str) -> None:
    schema_file = Path(cibuildwheel.__file__).parent / "resources" / "cibuildwheel.schema.json"
    schema = json.loads(schema_file.read_text())
    with (ROOT / config).open("rb") as f:
        options = tomllib.load(f)["tool"]["cibuildwheel"]
    jsonschema.validate(options, schema)
    # The Linux wheels pass the release audits (ELF: exports, NEEDED, RPATH) where they are built.
    audit = options.get("linux", {}).get("audit-command") or options["audit-command"]
    assert "tools/release/audit.py check --wheel-only {wheel}" in audit
