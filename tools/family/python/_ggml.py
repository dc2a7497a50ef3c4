"""ggml backend management shared by every package of the ggml family.

This file lives once in git (``tools/family/python/_ggml.py``) and is copied into each package
(``cyllama/_ggml.py``, ``cywhisper/_ggml.py`` ...) at build time. It needs nothing from the
package but its private ``_core`` extension, which links the family ggml and exposes the
registry functions of ``tools/family/src/ggml_registry.cpp``.

What it does, once per process whatever the number of family packages imported:
- routes ggml's log lines into Python ``logging`` (logger ``<package>.ggml``);
- loads the best CPU backend module for the running CPU from the package's own ``lib`` folder,
  by explicit path (ggml's own search only looks beside the executable and in the current
  directory). Packages built from the same ggml share one registry, so the second package finds
  the CPU backend already registered and loads nothing;
- on first need, discovers backend plugins (entry point group ``ggml.backends``), refuses any
  built for another ggml ABI fingerprint, and loads the others by path (see PLUGINS.md).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

# Windows has no RPATH, and Python does not search PATH for an extension's DLLs: the ggml DLLs
# beside the package's _core (in ./lib) must be added before _core is imported.
if sys.platform == "win32":  # pragma: no cover (no Windows machine in CI)
    os.add_dll_directory(str(Path(__file__).resolve().parent / "lib"))

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendState",
    "GgmlPluginWarning",
    "PluginError",
    "PluginInfo",
    "check_int",
    "check_model_file",
    "check_threads",
    "describe",
    "read_head",
    "setup",
    "state",
]

ENTRY_POINT_GROUP = "ggml.backends"
_LOG_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_lock = threading.Lock()

# State shared by every family package in the process (each has its own copy of this file):
# the warnings already given, so that two hosts refusing the same plugin warn once.
_process = sys.modules.setdefault("_ggml_family_process", ModuleType("_ggml_family_process"))
_warned: set[str] = _process.__dict__.setdefault("warned", set())


class GgmlPluginWarning(RuntimeWarning):
    """A ggml backend plugin was refused or found no device; work stays on the CPU."""


class PluginError(RuntimeError):
    """A plugin was refused while GGML_PLUGIN_STRICT=1 asks for refusals to be errors."""


@dataclass
class PluginInfo:
    """One entry point of the ``ggml.backends`` group and what became of it."""

    name: str
    distribution: str | None
    version: str | None
    state: str  # loaded | shared | refused | disabled | failed | no-device
    reason: str = ""
    fingerprint: str | None = None
    ggml_version: str | None = None
    backend: str | None = None
    path: str | None = None


def _warn_once(key: str, message: str) -> None:
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(message, GgmlPluginWarning, stacklevel=4)


@dataclass
class BackendState:
    """What the package found and loaded; shown by ``python -m <package> info``."""

    package: str
    core: ModuleType
    libdir: Path
    cpu_module: Path | None = None
    cpu_loaded_here: bool = False
    cpu_scores: dict[str, int] = field(default_factory=dict)
    cpu_errors: dict[str, str] = field(default_factory=dict)
    plugins: list[PluginInfo] | None = None  # None until discovered

    def sync_log_level(self) -> None:
        """Apply a changed level of the ``<package>.ggml`` logger to ggml's C-side filter."""
        logger = logging.getLogger(f"{self.package}.ggml")
        self.core.set_log_handler(self.core._family_log_handler, _min_level(logger))

    def info(self) -> dict[str, Any]:
        """A JSON-friendly description of the ggml build, modules and registered devices."""
        if self.cpu_module is None:
            _choose_cpu(self)
        return {
            "package": self.package,
            "ggml_version": self.core.ggml_version(),
            "fingerprint": self.core.fingerprint(),
            "backend_api_version": self.core.backend_api_version(),
            "libdir": str(self.libdir),
            "cpu_module": self.cpu_module.name if self.cpu_module else None,
            "cpu_module_loaded_by": self.package if self.cpu_loaded_here else "another package",
            "cpu_scores": dict(self.cpu_scores),
            "cpu_errors": dict(self.cpu_errors),
            "plugins": [vars(p) for p in self.load_plugins()],
            "backends": self.core.backends(),
        }

    def gpu_devices(self) -> list[str]:
        """Names of the registered GPU (or integrated GPU) devices, after loading plugins."""
        self.load_plugins()
        return [d["name"] for b in self.core.backends() for d in b["devices"]
                if d["type"] in ("gpu", "igpu")]

    def choose_gpu(self, use_gpu: bool | None) -> str | None:
        """The GPU device a ``use_gpu`` option means: the first registered one for None (when
        there is one) or True, None for the CPU; the core's BackendError for True without one."""
        gpus = self.gpu_devices()
        if use_gpu is None:
            use_gpu = bool(gpus)
        if use_gpu and not gpus:
            raise self.core.BackendError(self.no_gpu_error("use_gpu=True", "use_gpu=False"))
        return gpus[0] if use_gpu else None

    def no_gpu_error(self, asked: str, cpu_instead: str) -> str:
        """Why ``asked`` (e.g. "n_gpu_layers=-1") cannot be honoured, and what to do."""
        plugins = self.load_plugins()
        if not plugins:
            return (f"{asked} asks for a GPU, but no GPU plugin is installed. Install one "
                    f"(pip install '{self.package}[cuda]') or pass {cpu_instead} to run on the "
                    "CPU.")
        states = "; ".join(f"{p.name}: {p.state}" + (f" ({p.reason})" if p.reason else "")
                           for p in plugins)
        return (f"{asked} asks for a GPU, but no GPU device is registered. Installed plugins: "
                f"{states}. Check the driver (python -m {self.package} info shows the devices) "
                f"or pass {cpu_instead} to run on the CPU.")

    def load_plugins(self) -> list[PluginInfo]:
        """Discover and load the backend plugins: once per process, thread-safe."""
        with _lock:
            if self.plugins is None:
                self.plugins = [self._load_plugin(ep) for ep in _entry_points()]
            return self.plugins

    def _fix_command(self, dist: str | None) -> str:
        """The pip command that installs the plugin release built for this host's ggml."""
        dist = dist or "the plugin"
        norm = dist.lower().replace("_", "-")
        for req in metadata.requires(self.package) or []:
            spec = req.split(";")[0].strip()
            if spec.lower().replace("_", "-").startswith(norm) and "==" in spec:
                return f'pip install "{spec}"'
        return f"pip install --upgrade {dist} {self.package}"

    def _load_plugin(self, ep: metadata.EntryPoint) -> PluginInfo:
        dist = ep.dist.name if ep.dist else None
        info = PluginInfo(name=ep.name, distribution=dist,
                          version=ep.dist.version if ep.dist else None, state="failed")
        disabled = os.environ.get("GGML_PLUGIN_DISABLE", "").strip().lower()
        names = {n.strip() for n in disabled.split(",")}
        if disabled in ("1", "all", "true", "yes") or ep.name.lower() in names:
            info.state, info.reason = "disabled", "GGML_PLUGIN_DISABLE"
            return info
        try:
            plugin = ep.load()
            info.fingerprint = str(plugin.FINGERPRINT)
            info.ggml_version = str(plugin.GGML_VERSION)
            info.backend = str(plugin.BACKEND_NAME)
        except Exception as exc:  # a broken plugin must not break the host
            info.reason = f"cannot read the plugin: {type(exc).__name__}: {exc}"
            _warn_once(f"broken:{ep.name}", f"ggml plugin {ep.name!r} ({dist}) is broken and "
                       f"was skipped: {info.reason}")
            return info
        ours = self.core.fingerprint()
        if info.fingerprint != ours:
            info.state = "refused"
            info.reason = (f"built for ggml {info.ggml_version} (fingerprint {info.fingerprint}), "
                           f"{self.package} uses ggml {self.core.ggml_version()} "
                           f"(fingerprint {ours})")
            message = (f"ggml plugin {ep.name!r} ({dist} {info.version}) was not loaded: it was "
                       f"{info.reason}. Install the matching release: "
                       f"{self._fix_command(dist)}")
            if os.environ.get("GGML_PLUGIN_STRICT", "") not in ("", "0"):
                raise PluginError(message)
            _warn_once(f"refused:{ep.name}:{info.fingerprint}:{ours}", message)
            return info
        if self.core.backend_registered(info.backend):
            info.state = "shared"  # another family package with our ggml loaded it
            info.reason = f"{info.backend} already registered in this process"
            return info
        try:
            plugin.initialize()
            info.path = str(plugin.library_path())
            _, notes = self.core.backend_load(info.path)
        except Exception as exc:
            info.reason = f"{type(exc).__name__}: {exc}"
            _warn_once(f"failed:{ep.name}", f"ggml plugin {ep.name!r} ({dist}) could not be "
                       f"loaded: {info.reason}; running on the CPU")
            return info
        devices: list[Any] = next((b["devices"] for b in self.core.backends()
                                   if b["name"] == info.backend), [])
        if devices:
            info.state = "loaded"
        else:
            info.state = "no-device"
            info.reason = "; ".join(notes) or "its backend registered no device"
            _warn_once(f"nodevice:{ep.name}", f"ggml plugin {ep.name!r} ({dist}) found no "
                       f"device ({info.reason}); running on the CPU")
        return info


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _module_suffix() -> str:
    return ".dll" if sys.platform == "win32" else ".so"


def _cpu_modules(libdir: Path) -> list[Path]:
    prefix = "ggml-cpu" if sys.platform == "win32" else "libggml-cpu"
    return sorted(p for p in libdir.iterdir()
                  if p.name.startswith(prefix) and p.suffix == _module_suffix())


def _variant(path: Path) -> str:
    stem = path.stem.removeprefix("lib").removeprefix("ggml-cpu")
    return stem.lstrip("-") or "default"


def _min_level(logger: logging.Logger) -> int:
    if logger.isEnabledFor(logging.DEBUG):
        return 1
    return 2 if logger.isEnabledFor(logging.INFO) else 3


def _install_log_handler(core: ModuleType, package: str) -> None:
    logging.getLogger(package).addHandler(logging.NullHandler())
    logger = logging.getLogger(f"{package}.ggml")

    def handle(level: int, line: str) -> None:
        logger.log(_LOG_LEVELS.get(level, logging.INFO), line)

    # Filter in C++ so that debug chatter never crosses into Python unless asked for.
    min_level = _min_level(logger)
    core.set_log_handler(handle, min_level)
    core._family_log_handler = handle  # type: ignore[attr-defined]
    # ggml may still log from its own threads or destructors while Python shuts down: from
    # then on, lines at min_level and above go straight to stderr.
    atexit.register(core.set_log_handler, None, max(min_level, 3))


def _choose_cpu(state: BackendState) -> Path:
    """Score every CPU module (dlopen each) and record the best one for this CPU."""
    core = state.core
    modules = _cpu_modules(state.libdir)
    if not modules:
        raise ImportError(f"{state.package}: no ggml CPU backend module in {state.libdir}; "
                          "the installation is incomplete, reinstall the package")
    forced = os.environ.get(f"{state.package.upper()}_CPU_VARIANT")
    for path in modules:
        score, error = core.module_score(str(path))
        state.cpu_scores[_variant(path)] = score
        if error:
            state.cpu_errors[_variant(path)] = error
    if forced:
        chosen = [p for p in modules if _variant(p) == forced]
        if not chosen:
            raise ImportError(f"{state.package.upper()}_CPU_VARIANT={forced!r} names no CPU "
                              f"module; available: {', '.join(map(_variant, modules))}")
        best = chosen[0]
    elif len(modules) == 1:
        best = modules[0]
    else:
        best = max(modules, key=lambda p: state.cpu_scores[_variant(p)])
        if state.cpu_scores[_variant(best)] <= 0:
            raise ImportError(f"{state.package}: none of the ggml CPU modules in {state.libdir} "
                              f"runs on this CPU (scores {state.cpu_scores})")
    state.cpu_module = best
    return best


def _load_cpu(state: BackendState) -> None:
    if state.core.backend_registered("CPU"):
        # Another family package with the same ggml loaded it: one registry, one CPU backend.
        # Scoring the modules again would only cost import time; info() does it on demand.
        return
    state.core.backend_load(str(_choose_cpu(state)))
    state.cpu_loaded_here = True


def state(core: ModuleType) -> BackendState:
    """The state that :func:`setup` made for this package's ``_core``."""
    found = getattr(core, "_family_state", None)
    if not isinstance(found, BackendState):
        raise RuntimeError(f"{core.__name__}: ggml backends are not set up; import the package")
    return found


def setup(core: ModuleType, package: str) -> BackendState:
    """Route logs and register the best CPU backend; idempotent, thread-safe."""
    with _lock:
        existing = getattr(core, "_family_state", None)
        if existing is not None:
            return existing  # type: ignore[no-any-return]
        state = BackendState(package=package, core=core,
                             libdir=Path(str(core.__file__)).resolve().parent / "lib")
        _install_log_handler(core, package)
        _load_cpu(state)
        core._family_state = state  # type: ignore[attr-defined]
        return state


def describe(data: Mapping[str, Any]) -> list[str]:
    """Human-readable lines of ``BackendState.info()`` (each package's ``info`` command)."""
    out = [f"ggml {data['ggml_version']}  ABI fingerprint {data['fingerprint']}  "
           f"backend API {data['backend_api_version']}"]
    out.append(f"CPU module: {data['cpu_module']} (loaded by {data['cpu_module_loaded_by']})")
    scores = data["cpu_scores"]
    assert isinstance(scores, dict)
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    out.append("CPU variants (score, 0 = cannot run here): "
               + ", ".join(f"{name} {score}" for name, score in ranked))
    plugins = data["plugins"]
    assert isinstance(plugins, list)
    out.append("Plugins (entry points 'ggml.backends'):" + ("" if plugins else " none installed"))
    for p in plugins:
        reason = f": {p['reason']}" if p["reason"] else ""
        out.append(f"  {p['name']} ({p['distribution']} {p['version']}, fingerprint "
                   f"{p['fingerprint']}): {p['state']}{reason}")
    out.append("Registered backends:")
    backends = data["backends"]
    assert isinstance(backends, list)
    for reg in backends:
        out.append(f"  {reg['name']}")
        for dev in reg["devices"]:
            mem = dev["memory_total"] / 2**30
            out.append(f"    device {dev['name']} [{dev['type']}] {dev['description']}, "
                       f"{mem:.1f} GiB")
        if reg["features"]:
            out.append("    features: " + " ".join(k for k, v in reg["features"] if v == "1"))
    return out


# -- argument checks shared by the family's Python layers -----------------------------------


def run_command(package: str, command: str, action: Callable[[], object]) -> int:
    """Run a console-script command: 0, or 1 with the error on one stderr line (no traceback)
    for what a user can fix: a missing file, a bad value, a model that will not load."""
    try:
        action()
    except (OSError, ValueError, RuntimeError) as e:
        print(f"{package} {command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def check_int(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` if it is an int within bounds; TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_threads(name: str, value: int | None) -> int:
    """A thread count: ``value``, or every core when None."""
    return check_int(name, (os.cpu_count() or 4) if value is None else value, 1, 512)


def read_head(path: str | os.PathLike[str], what: str, n: int = 12) -> tuple[Path, bytes]:
    """``path`` and its first ``n`` bytes; FileNotFoundError / IsADirectoryError naming ``what``."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, f"{what} file not found", str(p))
    if p.is_dir():
        raise IsADirectoryError(21, f"{what} path is a directory, not a file", str(p))
    with p.open("rb") as f:
        return p, f.read(n)


def check_model_file(core: ModuleType, path: str | os.PathLike[str], *, magic: bytes, kind: str,
                     what: str = "model", hints: Mapping[bytes, str] | None = None) -> Path:
    """``path`` if it exists and starts with ``magic``, else the package's ModelLoadError
    naming the problem (``hints``: a note for files of another known kind, by their magic)."""
    p, head = read_head(path, what, len(magic))
    if not head:
        raise core.ModelLoadError(f"{what} file {p} is empty")
    if head != magic:
        hint = (hints or {}).get(head, "")
        raise core.ModelLoadError(f"{what} file {p} is not a {kind} (it starts with {head!r}, "
                                  f"not {magic!r}){hint}")
    return p
