"""Backend plugins through the ``ggml.backends`` entry points, with the fake backend module.

Every test runs a fresh interpreter (discovery happens once per process) with a plugin
distribution on PYTHONPATH, as pip would have installed it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cyllama import _core
from fake_plugin import BuiltBackend, fake_backend_for, plugin_env, write_plugin
from second_host import second_host


@pytest.fixture(scope="module")
def fake() -> BuiltBackend:
    return fake_backend_for(_core)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return tmp_path / "site"


def run(code: str, site: Path | None, **env: str) -> subprocess.CompletedProcess[str]:
    full = plugin_env(*([site] if site else []), **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full, timeout=300)


INFO = "import cyllama, json; print(json.dumps(cyllama.info()))"


def plugins_of(out: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    assert out.returncode == 0, out.stderr
    return {p["name"]: p for p in json.loads(out.stdout.splitlines()[-1])["plugins"]}


def test_discovered_loaded_by_path_and_listed(fake: BuiltBackend, site: Path) -> None:
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    out = run(INFO, site)
    plugin = plugins_of(out)["fake"]
    assert plugin["state"] == "loaded"
    assert plugin["path"] == str(fake.library)
    assert plugin["distribution"] == "ggml-fake-plugin"
    backends = {b["name"]: b for b in json.loads(out.stdout.splitlines()[-1])["backends"]}
    assert [d["name"] for d in backends["FAKE"]["devices"]] == ["FAKE0"]
    assert backends["FAKE"]["devices"][0]["type"] == "gpu"
    assert out.stderr == ""  # no warning for a good plugin

    cli = subprocess.run([sys.executable, "-m", "cyllama", "info"], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(site)})
    assert f"fake (ggml-fake-plugin 0.1.0, fingerprint {fake.fingerprint}): loaded" in cli.stdout
    assert "device FAKE0 [gpu] fake accelerator (computes on the CPU)" in cli.stdout


def test_layers_run_on_the_plugin_device(fake: BuiltBackend, site: Path,
                                         tiny_model: Path) -> None:
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    code = f"""
import ctypes, json, cyllama
llm = cyllama.LLM({str(tiny_model)!r}, n_ctx=128, n_threads=1)
text = llm.generate("The capital of France is", max_tokens=12).text
stats = (ctypes.c_int64 * 4)()
ctypes.CDLL({str(fake.library)!r}).ggml_fake_backend_stats(stats)
print(json.dumps({{"layers": llm.layer_devices, "ngl": llm.n_gpu_layers, "text": text,
                   "graphs": stats[0], "nodes": stats[1], "buffers": stats[2],
                   "mapped": stats[3]}}))
"""
    on_fake = json.loads(run(code, site).stdout.splitlines()[-1])
    assert on_fake["ngl"] == -1  # a GPU device is registered: everything is offloaded
    assert on_fake["layers"] == {"FAKE0": 3}  # 2 blocks + the output layer
    assert on_fake["graphs"] >= 12 and on_fake["nodes"] > 12 * 20 and on_fake["buffers"] >= 1
    # Mapped once and kept: a GPU module registers its kernels with its runtime when mapped.
    assert on_fake["mapped"] == 1

    cpu = run(f"import cyllama; print(repr(cyllama.LLM({str(tiny_model)!r}, n_ctx=128, "
              "n_threads=1).generate('The capital of France is', max_tokens=12).text))", site,
              GGML_PLUGIN_DISABLE="fake")
    assert cpu.returncode == 0, cpu.stderr
    assert repr(on_fake["text"]) == cpu.stdout.strip()  # same tokens on the fake device


def test_partial_offload(fake: BuiltBackend, site: Path, tiny_model: Path) -> None:
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    out = run(f"import cyllama; print(cyllama.LLM({str(tiny_model)!r}, n_ctx=128, "
              "n_gpu_layers=1).layer_devices)", site)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'CPU': 2, 'FAKE0': 1}"


def test_mismatched_fingerprint_is_refused(fake: BuiltBackend, site: Path) -> None:
    write_plugin(site, library=fake.library, fingerprint="000000000000", ggml_version="0.24.0")
    out = run(INFO, site)
    assert plugins_of(out)["fake"]["state"] == "refused"
    backends = json.loads(out.stdout.splitlines()[-1])["backends"]
    assert [b["name"] for b in backends] == ["CPU"]  # never loaded
    warning = [line for line in out.stderr.splitlines() if "GgmlPluginWarning" in line]
    assert len(warning) == 1
    assert ("ggml plugin 'fake' (ggml-fake-plugin 0.1.0) was not loaded: it was built for "
            f"ggml 0.24.0 (fingerprint 000000000000), cyllama uses ggml {fake.ggml_version} "
            f"(fingerprint {fake.fingerprint})") in warning[0]
    assert "pip install --upgrade ggml-fake-plugin cyllama" in warning[0]


def test_strict_mode_turns_refusal_into_error(fake: BuiltBackend, site: Path) -> None:
    write_plugin(site, library=fake.library, fingerprint="000000000000")
    out = run(INFO, site, GGML_PLUGIN_STRICT="1")
    assert out.returncode != 0
    assert "ggml_family.PluginError: ggml plugin 'fake'" in out.stderr


@pytest.mark.parametrize("value", ["1", "fake", "other,fake"])
def test_disable_env(fake: BuiltBackend, site: Path, value: str) -> None:
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    out = run(INFO, site, GGML_PLUGIN_DISABLE=value)
    assert plugins_of(out)["fake"]["state"] == "disabled"
    assert "FAKE" not in out.stdout.split('"backends"')[1]


def test_disabling_another_name_keeps_it(fake: BuiltBackend, site: Path) -> None:
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    assert plugins_of(run(INFO, site, GGML_PLUGIN_DISABLE="cuda"))["fake"]["state"] == "loaded"


def test_broken_and_failing_plugins_warn_and_fall_back(fake: BuiltBackend, site: Path) -> None:
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint, dist="ggml-broken",
                 entry_point="broken", broken=True)
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    out = run(INFO, site, FAKE_PLUGIN_INIT_FAILS="1")
    plugins = plugins_of(out)
    assert plugins["broken"]["state"] == "failed"
    assert "ImportError: plugin is broken on purpose" in plugins["broken"]["reason"]
    assert plugins["fake"]["state"] == "failed"
    assert "libfake-runtime.so.1: cannot open shared object file" in plugins["fake"]["reason"]
    assert out.stderr.count("GgmlPluginWarning") == 2


def test_gpu_layers_without_gpu_is_an_error(fake: BuiltBackend, site: Path,
                                            tiny_model: Path) -> None:
    code = f"import cyllama; cyllama.LLM({str(tiny_model)!r}, n_gpu_layers=4)"
    out = run(code, None)
    assert out.returncode != 0
    if not any(importlib.util.find_spec(f"ggml_cuda{m}_plugin") for m in (12, 13)):  # no real one
        assert ("BackendError: n_gpu_layers=4 asks for a GPU, but no GPU plugin is installed. "
                "Install one (pip install 'cyllama[cuda]' for NVIDIA, 'cyllama[vulkan]' for "
                "AMD, Intel and other GPUs) or pass n_gpu_layers=0") in out.stderr
    write_plugin(site, library=fake.library, fingerprint="0" * 12)  # refused: wrong ABI
    out = run(code, site)
    assert out.returncode != 0
    assert "asks for a GPU, but no GPU device is registered. Installed plugins: " in out.stderr
    assert "fake: refused (" in out.stderr and "pass n_gpu_layers=0" in out.stderr
    ok = run(f"import cyllama; print(cyllama.LLM({str(tiny_model)!r}).layer_devices)", None)
    assert ok.stdout.strip() == "{'CPU': 3}"


def test_plugin_discovery_happens_once(fake: BuiltBackend, site: Path) -> None:
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    code = ("import cyllama, ggml_fake_plugin; cyllama.info(); cyllama.info(); "
            "print(ggml_fake_plugin.initialized, [b['name'] for b in cyllama._core.backends()])")
    out = run(code, site)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1 ['CPU', 'FAKE']"


@pytest.fixture(scope="module")
def second_site() -> Path:
    return second_host()


@pytest.mark.parametrize("first", ["cyllama", "ggml_second_host"])
def test_two_hosts_share_one_registry_and_one_plugin(fake: BuiltBackend, site: Path,
                                                     second_site: Path, tiny_model: Path,
                                                     first: str) -> None:
    write_plugin(site, library=fake.library, fingerprint=fake.fingerprint)
    second = "ggml_second_host" if first == "cyllama" else "cyllama"
    code = f"""
import json, {first}, {second}, cyllama, ggml_second_host, ggml_fake_plugin
a, b = cyllama.info(), ggml_second_host.info()
llm = cyllama.LLM({str(tiny_model)!r}, n_ctx=64, n_threads=1)
print(json.dumps({{"a": a, "b": b, "layers": llm.layer_devices,
                   "init": ggml_fake_plugin.initialized,
                   "text": llm.generate("the", max_tokens=3).text}}))
"""
    out = run(code, None, PYTHONPATH=f"{site}{os.pathsep}{second_site}")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.splitlines()[-1])
    a, b = data["a"], data["b"]
    assert a["fingerprint"] == b["fingerprint"] == fake.fingerprint
    # One registry: one CPU backend and one FAKE backend, seen identically by both hosts.
    names_a = [x["name"] for x in a["backends"]]
    assert names_a == ["CPU", "FAKE"] == [x["name"] for x in b["backends"]]
    # Loaded on first use, not at import: cyllama.info() came first, whatever the import order.
    assert a["cpu_module_loaded_by"] == b["cpu_module_loaded_by"] == "cyllama"
    states = {p["state"] for host in (a, b) for p in host["plugins"] if p["name"] == "fake"}
    assert states == {"loaded", "shared"}
    assert data["init"] == 1  # initialize() ran once, by the host that loaded the plugin
    assert data["layers"] == {"FAKE0": 3} and data["text"]
    assert out.stderr == ""
