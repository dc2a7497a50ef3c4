"""``python -m ggml_family info`` with the real hosts installed and the fake plugin beside them.

One process imports every installed host (entry points ``ggml_family.hosts``): cyllama and
cywhisper share one ggml build, so the report shows both hosts, one registry with one CPU
backend, and the plugin loaded once (by whichever host came first) for both.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ggml_family
import pytest

cyllama = pytest.importorskip("cyllama")
pytest.importorskip("cywhisper")

from fake_plugin import fake_backend_for, plugin_env, write_plugin  # noqa: E402


def info(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ggml_family", "info", *args],
                          capture_output=True, text=True, env=plugin_env(site), timeout=300)


def test_info_shows_both_hosts_one_cpu_backend_and_the_plugin(tmp_path: Path) -> None:
    fake = fake_backend_for(cyllama._core)
    site = write_plugin(tmp_path / "site", library=fake.library, fingerprint=fake.fingerprint)
    out = info(site, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    hosts = {h["package"]: h for h in data["hosts"]}
    assert {"cyllama", "cywhisper"} <= set(hosts)
    assert data["errors"] == {}
    a, b = hosts["cyllama"], hosts["cywhisper"]
    assert a["fingerprint"] == b["fingerprint"] == fake.fingerprint
    assert a["version"] == cyllama.__version__
    for h in (a, b):  # one registry: the same backends seen from both
        assert [x["name"] for x in h["backends"]] == ["CPU", "FAKE"]
    states = sorted(p["state"] for h in (a, b) for p in h["plugins"] if p["name"] == "fake")
    assert states == ["loaded", "shared"]

    text = info(site)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    family = ggml_family
    assert lines[0] == f"ggml-family {family.__version__} (family API {family.FAMILY_API})"
    assert any(line.startswith(f"  cyllama {cyllama.__version__}: ggml ") for line in lines)
    assert any(line.startswith("  cywhisper ") for line in lines)
    build = next(line for line in lines if line.startswith("ggml "))
    assert f"build {fake.fingerprint} (one registry for " in build
    assert "cyllama" in build and "cywhisper" in build
    assert sum(1 for line in lines if line.strip() == "CPU") == 1  # one CPU backend
    assert sum(1 for line in lines if line.strip() == "FAKE") == 1
    assert (f"    fake (ggml-fake-plugin 0.1.0, fingerprint {fake.fingerprint}): loaded"
            in lines)
    assert any("device FAKE0 [gpu] fake accelerator" in line for line in lines)


@pytest.mark.parametrize("dist", ["ggml-family", "cyllama", "cywhisper", "cysd"])
def test_module_version_is_the_distributions(dist: str) -> None:
    """``__version__`` is a constant (no metadata look-up at import): it must equal pyproject's."""
    from importlib import import_module, metadata

    module = pytest.importorskip(dist.replace("-", "_"))
    assert module.__version__ == metadata.version(dist) == import_module(
        f"{module.__name__}._version").__version__
