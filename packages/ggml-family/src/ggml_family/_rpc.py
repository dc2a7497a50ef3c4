"""ggml's RPC server: this machine's devices (the CPU, a GPU plugin's) served to RPC clients on
other machines, which then place model layers on them (``LLM(path, rpc=["host:port"])``).

Any installed host does: they all carry ggml's RPC backend module. A client must run a build of
the same ggml (the protocol version follows ggml's operation list); a mismatch is refused at
the handshake.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from importlib import metadata
from pathlib import Path

from . import HOST_ENTRY_POINT_GROUP
from ._host import Host, hosts
from .checks import is_loopback

# What upstream's rpc-server says: the protocol has no authentication and no encryption.
WARNING = ("WARNING: the RPC server listens on {host}, not only on this machine.\n"
           "ggml's RPC protocol has no authentication and no encryption: anyone who reaches the\n"
           "port can use this machine's devices and read or write their memory. Never expose it\n"
           "to an open network.")


def any_host() -> Host:
    """The first installed host that loads (every host carries the RPC module)."""
    errors = []
    for ep in sorted(metadata.entry_points(group=HOST_ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            importlib.import_module(ep.value)
        except Exception as exc:  # one broken host must not hide the others
            errors.append(f"{ep.name}: {type(exc).__name__}: {exc}")
    found = hosts()
    if not found:
        raise ImportError("no ggml family host is installed (pip install cyllama, cywhisper or "
                          "cysd)" + (f"; {'; '.join(errors)}" if errors else ""))
    return found[0]


def serve(bind: str = "127.0.0.1", port: int = 50052, devices: list[str] | None = None,
          cache: str | None = None, threads: int | None = None) -> int:
    """Serve ``devices`` (default: the GPUs, else the CPU) at ``bind:port`` until SIGINT or
    SIGTERM; returns 0 then. Errors (a device that does not exist, a port in use) raise."""
    if not 0 < port < 65536:
        raise ValueError(f"port must be in 1-65535, got {port}")
    host = any_host()
    host.load_rpc()
    available = host.local_devices()
    names = [d["name"] for d in available]
    if devices:
        unknown = [d for d in devices if d not in names]
        if unknown:
            raise ValueError(f"no device {', '.join(unknown)} here; the devices are "
                             f"{', '.join(names)}")
        chosen = list(devices)
    else:
        gpus = [d["name"] for d in available if d["type"] != "cpu"]
        chosen = gpus or [d["name"] for d in available if d["type"] == "cpu"][:1]
    n_threads = threads or os.cpu_count() or 1
    if cache:  # ggml writes its files there without creating it
        Path(cache).mkdir(parents=True, exist_ok=True)
    endpoint = f"{bind}:{port}"
    if not is_loopback(bind):
        print(WARNING.format(host=bind), file=sys.stderr, flush=True)

    failure: list[BaseException] = []

    def run() -> None:
        try:
            host.core.rpc_start_server(endpoint, cache or "", n_threads, chosen)
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    server = threading.Thread(target=run, name="ggml-rpc-server", daemon=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(f"serving {', '.join(chosen)} at {endpoint} (ggml build {host.fingerprint}"
          f"{', tensor cache ' + cache if cache else ''}); Ctrl-C stops", flush=True)
    while not stop.wait(0.2):
        if not server.is_alive():
            raise failure[0] if failure else RuntimeError("the RPC server stopped")
    print("stopped", flush=True)
    # The serving thread is blocked in accept() inside ggml: leave without running C++ static
    # destructors under it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
