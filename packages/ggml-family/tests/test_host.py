"""Host registration and the CPU-module policy, over a stand-in ``_core`` (see standin.py).

The real extensions run the same code in every host's tests (cyllama's test_backend.py and
test_plugins.py); here each rule is checked alone: what registering does and does not do, which
module is chosen, what a second host on the same registry does, and the errors.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

import ggml_family
import pytest
from ggml_family import _plugins
from standin import StandInCore


@pytest.fixture(autouse=True)
def no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """No entry points from the environment: a real GPU plugin installed here stays out."""
    monkeypatch.setattr(_plugins, "_entry_points", [])


@pytest.mark.smoke
def test_version_is_the_distributions() -> None:
    assert metadata.version("ggml-family") == ggml_family.__version__


def test_another_family_api_is_refused_naming_both(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    core = StandInCore(tmp_path, {"x64": 1}, api=ggml_family.FAMILY_API + 1)
    with pytest.raises(ImportError) as e:
        ggml_family.register(core, "host_api", "9.9")
    assert str(e.value) == (
        f"host_api 9.9 was built for ggml-family API {ggml_family.FAMILY_API + 1}, but the "
        f"installed ggml-family {ggml_family.__version__} speaks API {ggml_family.FAMILY_API}: "
        "install the version host_api requires (pip install 'ggml-family')")
    monkeypatch.delattr(StandInCore, "family_api")  # an extension from before the API existed
    with pytest.raises(ImportError, match=r"^host_api 9\.9 was built for ggml-family API 0,"):
        ggml_family.register(core, "host_api", "9.9")
    with pytest.raises(KeyError):
        ggml_family.host("host_api")


def test_registering_loads_nothing_first_use_loads_the_best(tmp_path: Path) -> None:
    core = StandInCore(tmp_path, {"x64": 10, "haswell": 50, "zen4": 0}, fingerprint="aaaaaaaaaaa1")
    host = ggml_family.register(core, "host_lazy", "1.0")
    assert core.loaded == [] and core.scored == []  # import stays cheap
    assert ggml_family.register(core, "host_lazy", "1.0") is host is ggml_family.host("host_lazy")
    assert host.load() is host
    assert [Path(p).name for p in core.loaded] == ["libggml-cpu-haswell.so"]
    host.load()
    assert len(core.loaded) == 1 and len(core.scored) == 3
    info = host.info()
    assert info["cpu_module"] == "libggml-cpu-haswell.so"
    assert info["cpu_module_loaded_by"] == "host_lazy"
    assert info["cpu_scores"] == {"x64": 10, "haswell": 50, "zen4": 0}
    assert info["family_api"] == ggml_family.FAMILY_API and info["version"] == "1.0"
    assert [b["name"] for b in info["backends"]] == ["CPU"]
    assert host in ggml_family.hosts()


def test_a_second_host_on_the_same_registry_loads_nothing(tmp_path: Path) -> None:
    first = StandInCore(tmp_path / "a", {"x64": 1, "haswell": 2}, fingerprint="aaaaaaaaaaa2")
    second = StandInCore(tmp_path / "b", {"x64": 1, "haswell": 2}, fingerprint="aaaaaaaaaaa2")
    second.registry = first.registry  # one libggml-base in the process: one registry
    a = ggml_family.register(first, "host_first", "1")
    b = ggml_family.register(second, "host_second", "1")
    b.load()
    a.load()
    assert len(second.loaded) == 1 and first.loaded == []
    assert a.info()["cpu_module_loaded_by"] == b.info()["cpu_module_loaded_by"] == "host_second"


def test_forced_and_unusable_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    core = StandInCore(tmp_path / "f", {"x64": 10, "haswell": 50}, fingerprint="aaaaaaaaaaa3")
    monkeypatch.setenv("HOST_FORCED_CPU_VARIANT", "x64")
    ggml_family.register(core, "host_forced", "1").load()
    assert [Path(p).name for p in core.loaded] == ["libggml-cpu-x64.so"]

    core = StandInCore(tmp_path / "u", {"x64": 1}, fingerprint="aaaaaaaaaaa4")
    monkeypatch.setenv("HOST_UNKNOWN_CPU_VARIANT", "riscv")
    with pytest.raises(ImportError, match=r"^HOST_UNKNOWN_CPU_VARIANT='riscv' names no CPU "
                                          r"module; available: x64$"):
        ggml_family.register(core, "host_unknown", "1").load()

    core = StandInCore(tmp_path / "n", {"x64": 0, "haswell": -1}, fingerprint="aaaaaaaaaaa5")
    with pytest.raises(ImportError, match=r"^host_none: none of the ggml CPU modules in .* runs "
                                          r"on this CPU \(scores \{'haswell': -1, 'x64': 0\}\)$"):
        ggml_family.register(core, "host_none", "1").load()
    assert core.loaded == []

    core = StandInCore(tmp_path / "e", {}, fingerprint="aaaaaaaaaaa6")
    with pytest.raises(ImportError, match=r"^host_empty: no ggml CPU backend module in "):
        ggml_family.register(core, "host_empty", "1").load()


def test_logs_reach_logging_at_the_level_asked(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    core = StandInCore(tmp_path, {"x64": 1}, fingerprint="aaaaaaaaaaa7")
    host = ggml_family.register(core, "host_logs", "1")
    assert core.min_level == 3 and core.handler is not None  # warnings and errors by default
    with caplog.at_level(logging.INFO, logger="host_logs.ggml"):
        host.sync_log_level()
        assert core.min_level == 2
        core.handler(4, "ggml_init: out of memory")
        core.handler(2, "loaded 3 tensors")
    assert [(r.name, r.levelno, r.message) for r in caplog.records] == [
        ("host_logs.ggml", logging.ERROR, "ggml_init: out of memory"),
        ("host_logs.ggml", logging.INFO, "loaded 3 tensors")]


def test_no_gpu_without_plugins(tmp_path: Path) -> None:
    core = StandInCore(tmp_path, {"x64": 1}, fingerprint="aaaaaaaaaaa8")
    host = ggml_family.register(core, "host_cpu", "1")
    assert host.choose_gpu(None) is None and host.choose_gpu(False) is None
    assert host.load_plugins() == [] and host.gpu_devices() == []
    with pytest.raises(ggml_family.BackendError) as e:
        host.choose_gpu(True)
    assert str(e.value) == ("use_gpu=True asks for a GPU, but no GPU plugin is installed. "
                            "Install one (pip install 'host_cpu[cuda]' for NVIDIA, "
                            "'host_cpu[vulkan]' for AMD, Intel and other GPUs) or pass "
                            "use_gpu=False to run on the CPU.")


def test_plugin_problems() -> None:
    """What a plugin author's release check (and every host, before loading) finds wrong."""
    class Good:
        FINGERPRINT = "0123456789ab"
        GGML_VERSION = "0.9.4"
        BACKEND_NAME = "CUDA"

        def library_path(self) -> str:
            return "/x/libggml-cuda.so"

        def initialize(self) -> None:
            pass

    assert ggml_family.plugin_problems(Good()) == []
    assert isinstance(Good(), ggml_family.BackendPlugin)

    class Bad:
        FINGERPRINT = "0123456789AB"
        GGML_VERSION = ""
        library_path = "/x/libggml-cuda.so"

    assert ggml_family.plugin_problems(Bad()) == [
        "GGML_VERSION must be a non-empty str, not ''",
        "BACKEND_NAME must be a non-empty str, not None",
        "FINGERPRINT must be 12 lowercase hex digits, not '0123456789AB'",
        "library_path() is missing",
        "initialize() is missing",
    ]
