"""The plugin protocol: backend modules advertised through the ``ggml.backends`` entry points.

A plugin distribution (``ggml-cuda13-plugin``, ...) names an importable object with
``FINGERPRINT``, ``GGML_VERSION``, ``BACKEND_NAME``, ``library_path()`` and ``initialize()``
(see docs/plugins.md). A host compares the fingerprint with its own *before* anything is loaded
(the dynamic loader is no guard when two hosts share a process), then loads the module by path.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import GgmlPluginWarning, PluginError

if TYPE_CHECKING:  # importlib.metadata costs ~10 ms: imported when plugins are first looked for
    from importlib import metadata

    from ._host import Host

__all__ = ["ENTRY_POINT_GROUP", "BackendPlugin", "PluginInfo", "plugin_problems"]

ENTRY_POINT_GROUP = "ggml.backends"

_warned: set[str] = set()
_entry_points: list[metadata.EntryPoint] | None = None
_lock = threading.Lock()


@runtime_checkable
class BackendPlugin(Protocol):
    """What the object a ``ggml.backends`` entry point names must provide. Importing it must be
    cheap: nothing is loaded before :meth:`initialize`."""

    FINGERPRINT: str  # the ggml ABI fingerprint the module was built for
    GGML_VERSION: str  # that ggml's version, for messages
    BACKEND_NAME: str  # the name the module's ggml registry reports ("CUDA")

    def library_path(self) -> str:
        """Absolute path of the backend module."""
        ...

    def initialize(self) -> None:
        """Prepare the runtime (preload libraries); raising skips the plugin with a warning."""
        ...


@dataclass
class PluginInfo:
    """One entry point of the ``ggml.backends`` group and what one host made of it."""

    name: str
    distribution: str | None
    version: str | None
    state: str  # loaded | shared | standby | refused | disabled | declined | failed | no-device
    reason: str = ""
    fingerprint: str | None = None
    ggml_version: str | None = None
    backend: str | None = None
    path: str | None = None


_FINGERPRINT = re.compile(r"[0-9a-f]{12}")


def plugin_problems(plugin: object) -> list[str]:
    """What keeps ``plugin`` (the object an entry point names) from being a
    :class:`BackendPlugin`; empty when nothing does. Checks the attributes only: nothing is
    loaded or initialized. Plugin authors run it in their tests and release checks."""
    problems = []
    for name in ("FINGERPRINT", "GGML_VERSION", "BACKEND_NAME"):
        value = getattr(plugin, name, None)
        if not isinstance(value, str) or not value:
            problems.append(f"{name} must be a non-empty str, not {value!r}")
    fp = getattr(plugin, "FINGERPRINT", None)
    if isinstance(fp, str) and fp and not _FINGERPRINT.fullmatch(fp):
        problems.append(f"FINGERPRINT must be 12 lowercase hex digits, not {fp!r}")
    for name in ("library_path", "initialize"):
        if not callable(getattr(plugin, name, None)):
            problems.append(f"{name}() is missing")
    return problems


def warn_once(key: str, message: str) -> None:
    """One :class:`GgmlPluginWarning` per ``key`` and process, whichever host meets it."""
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(message, GgmlPluginWarning, stacklevel=5)


def entry_points() -> list[metadata.EntryPoint]:
    """The installed plugins' entry points, by name (read once per process)."""
    global _entry_points
    from importlib import metadata

    with _lock:
        if _entry_points is None:
            found = metadata.entry_points(group=ENTRY_POINT_GROUP)
            _entry_points = sorted(found, key=lambda ep: ep.name)
        return list(_entry_points)


def _disabled(name: str) -> bool:
    value = os.environ.get("GGML_PLUGIN_DISABLE", "").strip().lower()
    return value in ("1", "all", "true", "yes") or name.lower() in {
        n.strip() for n in value.split(",")}


def requirement(package: str, dist: str, *, pinned: bool = False) -> str | None:
    """The requirement of installed ``package`` on distribution ``dist`` (e.g.
    ``ggml-family<0.2,>=0.1``, an extra's marker left out), ``pinned``: only an ``==`` one;
    None if it has none (or runs from a source tree)."""
    from importlib import metadata

    norm = dist.lower().replace("_", "-")
    try:
        requires = metadata.requires(package) or []
    except metadata.PackageNotFoundError:
        return None
    for req in requires:
        spec = req.split(";")[0].strip()
        if spec.lower().replace("_", "-").startswith(norm) and (not pinned or "==" in spec):
            return spec
    return None


def _fix_command(host: Host, dist: str | None) -> str:
    """The pip command that installs the plugin release built for the host's ggml."""
    dist = dist or "the plugin"
    spec = requirement(host.package, dist, pinned=True)
    return f'pip install "{spec}"' if spec else f"pip install --upgrade {dist} {host.package}"


def _hint(plugin: Any) -> list[str]:
    """The plugin's optional ``no_device_hint()``: why it may have found no device."""
    hint = getattr(plugin, "no_device_hint", None)
    if not callable(hint):
        return []
    try:
        return [str(hint())]
    except Exception as exc:  # a broken hint must not hide the warning itself
        return [f"no_device_hint() failed: {type(exc).__name__}: {exc}"]


_Pending = tuple[str, str]  # a warning to give: (once-per-process key, message)


def _read(ep: metadata.EntryPoint, pending: list[_Pending]) -> tuple[PluginInfo, Any]:
    """The plugin object an entry point names, checked with plugin_problems (None if broken or
    disabled)."""
    dist = ep.dist.name if ep.dist else None
    info = PluginInfo(name=ep.name, distribution=dist,
                      version=ep.dist.version if ep.dist else None, state="failed")
    if _disabled(ep.name):
        info.state, info.reason = "disabled", "GGML_PLUGIN_DISABLE"
        return info, None
    try:
        plugin: Any = ep.load()
        problems = plugin_problems(plugin)
        if problems:
            raise TypeError(f"not a ggml backend plugin: {'; '.join(problems)}")
        info.fingerprint = plugin.FINGERPRINT
        info.ggml_version = plugin.GGML_VERSION
        info.backend = plugin.BACKEND_NAME
    except Exception as exc:  # a broken plugin must not break the host
        info.reason = f"cannot read the plugin: {type(exc).__name__}: {exc}"
        pending.append((f"broken:{ep.name}", f"ggml plugin {ep.name!r} ({dist}) is broken and "
                        f"was skipped: {info.reason}"))
        return info, None
    return info, plugin


def _load(host: Host, info: PluginInfo, plugin: Any, pending: list[_Pending]) -> None:
    """Load one plugin whose fingerprint matches into the host's ggml registry."""
    name, dist = info.name, info.distribution
    core = host.core
    if core.backend_registered(info.backend):
        info.state = "shared"  # another family host with our ggml loaded it
        info.reason = f"{info.backend} already registered in this process"
        return
    try:
        plugin.initialize()
        info.path = str(plugin.library_path())
        _, notes = core.backend_load(info.path)
    except Exception as exc:
        info.reason = f"{type(exc).__name__}: {exc}"
        if hasattr(exc, "alternative"):  # the CUDA plugins' check (ggml_family.cuda.Declined)
            info.state = "declined"
            if exc.alternative:
                info.reason += f": {_fix_command(host, exc.alternative)}"
        pending.append((f"failed:{name}", f"ggml plugin {name!r} ({dist}) could not be loaded: "
                        f"{info.reason}; running on the CPU"))
        return
    devices: list[Any] = next((b["devices"] for b in core.backends()
                               if b["name"] == info.backend), [])
    if devices:
        info.state = "loaded"
    else:
        info.state = "no-device"
        info.reason = "; ".join([*notes, *_hint(plugin)]) or "its backend registered no device"
        pending.append((f"nodevice:{name}", f"ggml plugin {name!r} ({dist}) found no device "
                        f"({info.reason}); running on the CPU"))


def _check_fingerprint(host: Host, info: PluginInfo, pending: list[_Pending]) -> bool:
    ours = host.fingerprint
    if info.fingerprint == ours:
        return True
    info.state = "refused"
    info.reason = (f"built for ggml {info.ggml_version} (fingerprint {info.fingerprint}), "
                   f"{host.package} uses ggml {host.ggml_version} (fingerprint {ours})")
    message = (f"ggml plugin {info.name!r} ({info.distribution} {info.version}) was not loaded: "
               f"it was {info.reason}. Install the matching release: "
               f"{_fix_command(host, info.distribution)}")
    if os.environ.get("GGML_PLUGIN_STRICT", "") not in ("", "0"):
        raise PluginError(message)
    pending.append((f"refused:{info.name}:{info.fingerprint}:{ours}", message))
    return False


def load_plugins(host: Host, eps: list[metadata.EntryPoint]) -> list[PluginInfo]:
    """Check every plugin against ``host`` and load those that fit into its ggml registry.

    Plugins that serve one backend (the CUDA 12 and CUDA 13 builds) are tried in the order of
    their optional ``PREFERENCE`` (highest first): the first that loads serves the backend and
    the others wait (``standby``). One that the driver check declined (``declined``: its
    initialize() raised an error naming an ``alternative`` distribution) warns only when no
    plugin tried after it serves or warns in its place."""
    read = []
    emit: list[_Pending] = []
    for ep in eps:
        pending: list[_Pending] = []
        info, plugin = _read(ep, pending)
        emit += pending
        read.append((info, plugin))
    groups: dict[str, list[tuple[PluginInfo, Any]]] = {}
    for info, plugin in read:
        if plugin is not None:
            groups.setdefault(info.backend or "", []).append((info, plugin))
    for group in groups.values():
        group.sort(key=lambda item: -int(getattr(item[1], "PREFERENCE", 0)))
        serving: PluginInfo | None = None
        tried: list[tuple[PluginInfo, list[_Pending]]] = []
        for info, plugin in group:
            if serving is not None:
                info.state = "standby"
                info.reason = f"{serving.distribution} serves {info.backend} ({serving.state})"
                continue
            pending = []
            if _check_fingerprint(host, info, pending):
                _load(host, info, plugin, pending)
            tried.append((info, pending))
            if info.state in ("loaded", "no-device", "shared"):
                serving = info
        for i, (info, pending) in enumerate(tried):
            if info.state != "declined" or (i == len(tried) - 1 and serving is None):
                emit += pending
    for key, message in emit:
        warn_once(key, message)
    return [info for info, _ in read]
