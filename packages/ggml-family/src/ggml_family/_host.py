"""Hosts: the family packages (cyllama, cywhisper, cysd ...) and the ggml each one carries.

A host registers its private ``_core`` extension at import (cheap: log routing only). The CPU
backend module is chosen and loaded on first use (``Host.load()``, called by every model
constructor and by ``info()``), plugins on the first question about devices. Hosts built on the
same ggml (equal fingerprints) share one ``libggml-base`` and so one backend registry: whichever
loads the CPU module or a plugin first does it for all of them.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from . import errors as _errors
from ._plugins import PluginInfo, entry_points, load_plugins, requirement
from ._version import FAMILY_API, __version__

__all__ = ["Host", "add_dll_directory", "host", "hosts", "register", "sync_log_levels"]

_LOG_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
# One lock for every host: loading modules into a shared registry must not interleave.
_lock = threading.RLock()
_hosts: dict[str, Host] = {}
# Which host loaded the CPU module of each ggml build (fingerprint) in this process.
_cpu_loaded_by: dict[str, str] = {}


def add_dll_directory(package_file: str) -> None:
    """Windows: make a host's ``lib`` folder (the ggml DLLs its ``_core`` needs) findable before
    ``_core`` is imported; Python does not search PATH for an extension's DLLs. Elsewhere the
    extension's RPATH does it and this does nothing."""
    if sys.platform == "win32":  # pragma: no cover (no Windows machine in CI)
        os.add_dll_directory(str(Path(package_file).resolve().parent / "lib"))


def _min_level(logger: logging.Logger) -> int:
    if logger.isEnabledFor(logging.DEBUG):
        return 1
    return 2 if logger.isEnabledFor(logging.INFO) else 3


@dataclass(eq=False)
class Host:
    """One family package and its ggml: what it found, chose and loaded."""

    package: str
    version: str
    core: ModuleType
    libdir: Path
    fingerprint: str
    ggml_version: str
    library: str = ""  # the upstream library the host binds ("whisper.cpp")
    library_version: str | None = None
    system_info: Callable[[], str] | None = None  # upstream's own system-info line
    cpu_module: Path | None = None
    cpu_scores: dict[str, int] = field(default_factory=dict)
    cpu_errors: dict[str, str] = field(default_factory=dict)
    plugins: list[PluginInfo] | None = None  # None until discovered
    _loaded: bool = False

    # -- logging ---------------------------------------------------------------------------

    @property
    def logger(self) -> logging.Logger:
        """The logger ggml's and the library's log lines go to: ``<package>.ggml``."""
        return logging.getLogger(f"{self.package}.ggml")

    def sync_log_level(self) -> None:
        """Apply a changed level of :attr:`logger` to the C-side filter (lines below it are
        dropped before they reach Python)."""
        self.core.set_log_handler(self._log_line, _min_level(self.logger))

    def _log_line(self, level: int, line: str) -> None:
        self.logger.log(_LOG_LEVELS.get(level, logging.INFO), line)

    def _route_logs(self) -> None:
        logging.getLogger(self.package).addHandler(logging.NullHandler())
        min_level = _min_level(self.logger)
        self.core.set_log_handler(self._log_line, min_level)
        # ggml may still log from its own threads or destructors while Python shuts down:
        # from then on, lines at min_level and above go straight to stderr.
        atexit.register(self.core.set_log_handler, None, max(min_level, 3))

    # -- the CPU backend -------------------------------------------------------------------

    def load(self) -> Host:
        """Make sure ggml's registry has a CPU backend: the best module of this host's ``lib``
        for the running CPU, unless a host on the same ggml loaded one already. Idempotent,
        thread-safe; ImportError if no module can run here."""
        if self._loaded:
            return self
        with _lock:
            if not self._loaded:
                if not self.core.backend_registered("CPU"):
                    self.core.backend_load(str(self.choose_cpu()))
                    _cpu_loaded_by[self.fingerprint] = self.package
                self._loaded = True
        return self

    def cpu_modules(self) -> list[Path]:
        """The CPU backend modules in this host's ``lib`` folder."""
        prefix = "ggml-cpu" if sys.platform == "win32" else "libggml-cpu"
        suffix = ".dll" if sys.platform == "win32" else ".so"
        return sorted(p for p in self.libdir.iterdir()
                      if p.name.startswith(prefix) and p.suffix == suffix)

    def choose_cpu(self) -> Path:
        """Score every CPU module (each is opened and asked) and record the best one for this
        CPU; ``<PACKAGE>_CPU_VARIANT=name`` forces one."""
        modules = self.cpu_modules()
        if not modules:
            raise ImportError(f"{self.package}: no ggml CPU backend module in {self.libdir}; "
                              "the installation is incomplete, reinstall the package")
        for path in modules:
            score, error = self.core.module_score(str(path))
            self.cpu_scores[_variant(path)] = score
            if error:
                self.cpu_errors[_variant(path)] = error
        variable = f"{self.package.upper()}_CPU_VARIANT"
        forced = os.environ.get(variable)
        if forced:
            chosen = [p for p in modules if _variant(p) == forced]
            if not chosen:
                raise ImportError(f"{variable}={forced!r} names no CPU module; available: "
                                  f"{', '.join(map(_variant, modules))}")
            best = chosen[0]
        elif len(modules) == 1:
            best = modules[0]
        else:
            best = max(modules, key=lambda p: self.cpu_scores[_variant(p)])
            if self.cpu_scores[_variant(best)] <= 0:
                raise ImportError(f"{self.package}: none of the ggml CPU modules in "
                                  f"{self.libdir} runs on this CPU (scores {self.cpu_scores})")
        self.cpu_module = best
        return best

    # -- plugins and devices ---------------------------------------------------------------

    def load_plugins(self) -> list[PluginInfo]:
        """Discover and load the backend plugins (after the CPU backend): once per host."""
        self.load()
        with _lock:
            if self.plugins is None:
                self.plugins = load_plugins(self, entry_points())
            return self.plugins

    def local_devices(self) -> list[dict[str, Any]]:
        """This machine's registered devices (CPU, GPUs) after loading plugins: not the RPC
        servers' devices, which say they are GPUs."""
        self.load_plugins()
        return [d for b in self.core.backends() if not b["name"].startswith("RPC")
                for d in b["devices"] if d["type"] in ("cpu", "gpu", "igpu")]

    def gpu_devices(self) -> list[str]:
        """Names of this machine's GPU (or integrated GPU) devices, after loading plugins."""
        return [d["name"] for d in self.local_devices() if d["type"] != "cpu"]

    # -- RPC -------------------------------------------------------------------------------

    def rpc_module(self) -> Path:
        """ggml's RPC backend module in this host's ``lib`` folder."""
        return self.libdir / ("ggml-rpc.dll" if sys.platform == "win32" else "libggml-rpc.so")

    def load_rpc(self) -> None:
        """Register ggml's RPC backend (once per ggml build, like the CPU backend)."""
        self.load()
        with _lock:
            if not self.core.backend_registered("RPC"):
                module = self.rpc_module()
                if not module.is_file():
                    raise _errors.BackendError(
                        f"{self.package} has no RPC backend module ({module} is missing): "
                        "reinstall the package")
                self.core.backend_load(str(module))

    def add_rpc_servers(self, endpoints: list[str]) -> list[str]:
        """Connect to RPC servers (``host:port`` each) and register their devices; returns the
        devices' names, in order. BackendError names a server that cannot be reached or that
        speaks another protocol version."""
        self.load_rpc()
        names: list[str] = []
        for endpoint in endpoints:
            names += self.core.rpc_add_server(check_endpoint(endpoint))
        return names

    def rpc_device(self, endpoint: str, use_gpu: bool | None) -> str:
        """The device a model that runs on one device (whisper.cpp, stable-diffusion.cpp) uses
        on the RPC server at ``endpoint``: the first it serves. ``use_gpu=False`` (this CPU)
        contradicts it: ValueError."""
        if use_gpu is False:
            raise ValueError("rpc runs the model on the server's device; use_gpu=False asks for "
                             "this machine's CPU")
        return self.add_rpc_servers([endpoint])[0]

    def memory_total(self, *, gpu: bool) -> int:
        """Bytes of memory the machine has for a model's buffers: its RAM (the CPU device's
        total), plus every GPU's with ``gpu``. A size beyond it is impossible, not just large."""
        if gpu:
            self.load_plugins()
        else:
            self.load()
        kinds = ("cpu", "gpu", "igpu") if gpu else ("cpu",)
        return sum(int(d["memory_total"]) for b in self.core.backends() for d in b["devices"]
                   if d["type"] in kinds)

    def choose_gpu(self, use_gpu: bool | None) -> str | None:
        """The GPU device a ``use_gpu`` option means: the first registered one for None (when
        there is one) or True; None for the CPU. True without a GPU is the host's
        BackendError, saying why."""
        gpus = self.gpu_devices()
        if use_gpu is None:
            use_gpu = bool(gpus)
        if use_gpu and not gpus:
            raise _errors.BackendError(self.no_gpu_error("use_gpu=True", "use_gpu=False"))
        return gpus[0] if use_gpu else None

    def choose_device(self, use_gpu: bool | None, rpc: str | None = None) -> str:
        """The device a model that runs on one device (whisper.cpp, stable-diffusion.cpp) uses:
        the RPC server's at ``rpc`` (:meth:`rpc_device`), else as :meth:`choose_gpu` says,
        else "CPU"."""
        if rpc is not None:
            return self.rpc_device(rpc, use_gpu)
        return self.choose_gpu(use_gpu) or "CPU"

    def no_gpu_error(self, asked: str, cpu_instead: str) -> str:
        """Why ``asked`` (e.g. "n_gpu_layers=-1") cannot be honoured, and what to do."""
        plugins = self.load_plugins()
        if not plugins:
            return (f"{asked} asks for a GPU, but no GPU plugin is installed. Install one "
                    f"(pip install '{self.package}[cuda]' for NVIDIA, '{self.package}[vulkan]' "
                    f"for AMD, Intel and other GPUs) or pass {cpu_instead} to run on the CPU.")
        states = "; ".join(f"{p.name}: {p.state}" + (f" ({p.reason})" if p.reason else "")
                           for p in plugins)
        return (f"{asked} asks for a GPU, but no GPU device is registered. Installed plugins: "
                f"{states}. Check the driver (python -m {self.package} info shows the devices) "
                f"or pass {cpu_instead} to run on the CPU.")

    # -- diagnostics -----------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """A JSON-friendly description of the ggml build, modules and registered devices."""
        plugins = self.load_plugins()
        if self.cpu_module is None:
            self.choose_cpu()  # the module another host loaded: score ours for the record
        return {
            "package": self.package,
            "version": self.version,
            "library": self.library,
            "library_version": self.library_version,
            "ggml_version": self.ggml_version,
            "fingerprint": self.fingerprint,
            "backend_api_version": self.core.backend_api_version(),
            "family_api": self.core.family_api(),
            "libdir": str(self.libdir),
            "cpu_module": self.cpu_module.name if self.cpu_module else None,
            "cpu_module_loaded_by": _cpu_loaded_by.get(self.fingerprint, "another package"),
            "cpu_scores": dict(self.cpu_scores),
            "cpu_errors": dict(self.cpu_errors),
            "plugins": [vars(p) for p in plugins],
            "backends": self.core.backends(),
            "system_info": self.system_info() if self.system_info else None,
        }


def _variant(path: Path) -> str:
    stem = path.stem.removeprefix("lib").removeprefix("ggml-cpu")
    return stem.lstrip("-") or "default"


# What a _core raises, in set_error_classes' order: a host may give a subclass of each.
_ERROR_BASES = (_errors.ModelLoadError, _errors.ComputeError, _errors.BackendError,
                _errors.Cancelled)


def register(core: ModuleType, package: str, version: str, *,
             errors: Sequence[type[_errors.GgmlError]] = (), library: str = "",
             library_version: str | None = None,
             system_info: Callable[[], str] | None = None) -> Host:
    """Register a host's ``_core`` (call it once from the package's ``__init__``): checks that
    the extension speaks this ggml-family's API, makes it raise the host's exceptions and
    routes its log into ``logging``. Nothing is loaded until :meth:`Host.load`.

    ``errors``: the host's own subclasses of :mod:`ggml_family.errors`' classes (its
    ``ModelLoadError`` ...); ``_core`` raises each in place of its base, the base itself where
    none is given. ``library``, ``library_version`` and ``system_info`` (the upstream library,
    its version, its system-info function) are shown by ``info()``. Idempotent for the same
    ``core``."""
    api = getattr(core, "family_api", None)
    theirs = api() if callable(api) else 0
    if theirs != FAMILY_API:
        wanted = requirement(package, "ggml-family") or "ggml-family"
        raise ImportError(f"{package} {version} was built for ggml-family API {theirs}, but the "
                          f"installed ggml-family {__version__} speaks API {FAMILY_API}: install "
                          f"the version {package} requires (pip install '{wanted}')")
    with _lock:
        existing = _hosts.get(package)
        if existing is not None and existing.core is core:
            return existing
        core.set_error_classes(*_error_classes(package, errors))
        found = Host(package=package, version=version, core=core,
                     libdir=Path(str(core.__file__)).resolve().parent / "lib",
                     fingerprint=core.fingerprint(), ggml_version=core.ggml_version(),
                     library=library, library_version=library_version,
                     system_info=system_info)
        found._route_logs()
        _hosts[package] = found
        return found


def _error_classes(package: str, errors: Sequence[type[_errors.GgmlError]]
                   ) -> list[type[_errors.GgmlError]]:
    """What a host's _core raises for each of _ERROR_BASES: the host's subclass, else the base."""
    classes: list[type[_errors.GgmlError]] = []
    for base in _ERROR_BASES:
        mine = [cls for cls in errors if issubclass(cls, base)]
        if len(mine) > 1:
            raise TypeError(f"{package}: more than one error class derives from "
                            f"{base.__name__}: {', '.join(c.__name__ for c in mine)}")
        classes.append(mine[0] if mine else base)
    return classes


def host(package: str) -> Host:
    """The registered host named ``package`` (imported already); KeyError otherwise."""
    with _lock:
        return _hosts[package]


def hosts() -> list[Host]:
    """Every host registered in this process, in import order."""
    with _lock:
        return list(_hosts.values())


def check_endpoint(endpoint: object) -> str:
    """``host:port`` (a name, IPv4 address or bracketed IPv6 address, and a port 1-65535)."""
    if not isinstance(endpoint, str):
        raise TypeError(f"an RPC endpoint must be a str 'host:port', not {type(endpoint).__name__}")
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"an RPC endpoint is 'host:port' (port 1-65535), got {endpoint!r}")
    return endpoint


def sync_log_levels() -> None:
    """Apply the current levels of the ``<package>.ggml`` loggers to every host's C-side filter.

    ggml's lines below a logger's level are dropped in C++ before they reach Python; the filter
    is set when a host registers. Call this after changing logging's configuration (e.g.
    ``logging.getLogger("cyllama").setLevel(logging.DEBUG)``) to see the lines it now allows."""
    for h in hosts():
        h.sync_log_level()
