"""ggml-family: the runtime every package of the ggml wheel family shares.

One copy per process, whatever the number of family packages imported: the registered hosts
(cyllama, cywhisper, cysd ...), the choice of the CPU backend module for the running CPU, the
GPU plugins (entry point group ``ggml.backends``, refused unless built for the host's ggml ABI
fingerprint), ggml's log routed into ``logging``, the exceptions every host derives its own
from (:mod:`ggml_family.errors`), the argument checks and the console helpers.

``python -m ggml_family info`` lists every installed host and plugin and what became of them.
"""

from __future__ import annotations

from ._host import Host, add_dll_directory, host, hosts, register, sync_log_levels
from ._lazy import lazy_exports
from ._params import params
from ._plugins import ENTRY_POINT_GROUP, BackendPlugin, PluginInfo, plugin_problems
from ._version import FAMILY_API, __version__
from .errors import (
    BackendError,
    Cancelled,
    ComputeError,
    GgmlError,
    GgmlPluginWarning,
    ModelLoadError,
    PluginError,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "FAMILY_API",
    "HOST_ENTRY_POINT_GROUP",
    "BackendError",
    "BackendPlugin",
    "Cancelled",
    "ComputeError",
    "GgmlError",
    "GgmlPluginWarning",
    "Host",
    "ModelLoadError",
    "PluginError",
    "PluginInfo",
    "__version__",
    "add_dll_directory",
    "host",
    "hosts",
    "lazy_exports",
    "params",
    "plugin_problems",
    "register",
    "sync_log_levels",
]

#: Entry point group through which hosts make themselves known to ``python -m ggml_family``.
HOST_ENTRY_POINT_GROUP = "ggml_family.hosts"
