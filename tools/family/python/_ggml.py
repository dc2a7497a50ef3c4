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
  the CPU backend already registered and loads nothing.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["BackendState", "setup"]

_LOG_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}
_lock = threading.Lock()


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

    def sync_log_level(self) -> None:
        """Apply a changed level of the ``<package>.ggml`` logger to ggml's C-side filter."""
        logger = logging.getLogger(f"{self.package}.ggml")
        self.core.set_log_handler(self.core._family_log_handler, _min_level(logger))

    def info(self) -> dict[str, Any]:
        """A JSON-friendly description of the ggml build, modules and registered devices."""
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
            "backends": self.core.backends(),
        }


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


def _load_cpu(state: BackendState) -> None:
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
    if core.backend_registered("CPU"):
        return  # another family package with the same ggml loaded it: one registry, one CPU
    core.backend_load(str(best))
    state.cpu_loaded_here = True


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
