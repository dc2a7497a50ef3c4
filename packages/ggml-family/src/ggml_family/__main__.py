"""``python -m ggml_family info`` (also ``ggml-family info``): every installed host and plugin;
``python -m ggml_family rpc-server``: this machine's devices served to ggml RPC clients.

Hosts make themselves known through the ``ggml_family.hosts`` entry point group; each is
imported, its CPU backend loaded and the plugins discovered, then the hosts are shown grouped by
ggml build (hosts with one fingerprint share one registry: one CPU backend, one loaded plugin).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from . import FAMILY_API, HOST_ENTRY_POINT_GROUP, __version__, hosts
from .cli import describe_backends, describe_cpu, describe_plugins, run_command


def collect() -> dict[str, Any]:
    """Import every installed host and describe it: a JSON-friendly dict."""
    errors: dict[str, str] = {}
    entry_points = sorted(metadata.entry_points(group=HOST_ENTRY_POINT_GROUP),
                          key=lambda ep: ep.name)
    for ep in entry_points:
        try:
            importlib.import_module(ep.value)
        except Exception as exc:  # one broken host must not hide the others
            errors[ep.name] = f"{type(exc).__name__}: {exc}"
    found = []
    for h in hosts():
        try:
            found.append(h.info())
        except Exception as exc:
            errors[h.package] = f"{type(exc).__name__}: {exc}"
    return {"ggml_family": __version__, "family_api": FAMILY_API, "hosts": found,
            "errors": errors}


def describe_all(data: dict[str, Any]) -> list[str]:
    """The text of ``info``: hosts, then one section per ggml build."""
    out = [f"ggml-family {data['ggml_family']} (family API {data['family_api']})"]
    found: list[dict[str, Any]] = data["hosts"]
    out.append(f"Hosts (entry points '{HOST_ENTRY_POINT_GROUP}'):"
               + ("" if found or data["errors"] else " none installed"))
    for h in found:
        out.append(f"  {h['package']} {h['version']}: ggml {h['ggml_version']}, fingerprint "
                   f"{h['fingerprint']}, backend API {h['backend_api_version']}, family API "
                   f"{h['family_api']}, lib {h['libdir']}")
    for name, error in sorted(data["errors"].items()):
        out.append(f"  {name}: not usable: {error}")
    builds: dict[str, list[dict[str, Any]]] = {}
    for h in found:
        builds.setdefault(h["fingerprint"], []).append(h)
    for fp, group in builds.items():
        first = group[0]
        out.append(f"ggml {first['ggml_version']} build {fp} "
                   f"(one registry for {', '.join(h['package'] for h in group)}):")
        section = describe_cpu(first)
        # The first host to load a plugin did it for the build; the others report "shared".
        by_name: dict[str, dict[str, Any]] = {}
        for h in group:
            for p in h["plugins"]:
                if p["name"] not in by_name or by_name[p["name"]]["state"] == "shared":
                    by_name[p["name"]] = p
        section += describe_plugins(list(by_name.values()))
        section += describe_backends(first["backends"])
        out += ["  " + line for line in section]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ggml-family", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show ggml's log")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="installed hosts and plugins, CPU module, devices")
    p_info.add_argument("--json", action="store_true")
    p_rpc = sub.add_parser(
        "rpc-server", help="serve this machine's devices to ggml RPC clients (other machines' "
        "LLM(path, rpc=[...])); no authentication: loopback or a trusted network only")
    p_rpc.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    p_rpc.add_argument("--port", type=int, default=50052, help="port (default 50052)")
    p_rpc.add_argument("--device", action="append", metavar="NAME",
                       help="a device to serve (CPU, CUDA0, Vulkan0, ...; repeat for more); "
                       "default: the GPUs, else the CPU")
    p_rpc.add_argument("--cache", metavar="DIR",
                       help="keep received weights over 10 MiB in DIR (created if missing), so "
                       "a model loaded again sends only their hashes")
    p_rpc.add_argument("--threads", type=int, help="CPU threads (default: every core)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(name)s: %(message)s")

    def action() -> None:
        if args.command == "rpc-server":
            from ._rpc import serve
            serve(args.host, args.port, args.device, args.cache, args.threads)
            return
        data = collect()
        print(json.dumps(data, indent=2) if args.json else "\n".join(describe_all(data)))

    return run_command("ggml-family", args.command, action)


if __name__ == "__main__":
    sys.exit(main())
