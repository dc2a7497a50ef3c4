"""What the family's console commands share: the parser's common part (``-v`` and ``info``),
the ``info`` text, logging set up from ``-v``, and the one-line error runner."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["command_parser", "describe", "print_info", "run_command", "run_main"]


def command_parser(package: str, description: str
                   ) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[Any]]:
    """A host's console command: ``-v/--verbose`` (show ggml's log) and the ``info [--json]``
    subcommand (``sub.choices["info"]`` takes more arguments); add the others to ``sub``."""
    parser = argparse.ArgumentParser(prog=package, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="show ggml's log")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="ggml build, CPU module, plugins and devices")
    p_info.add_argument("--json", action="store_true", help="machine-readable output")
    return parser, sub


def run_main(package: str, args: argparse.Namespace,
             commands: Mapping[str, Callable[[], object]]) -> int:
    """Run the subcommand ``args.command`` of a host's console command (``info`` prints
    ``<package>.info()`` unless ``commands`` has its own): logging at INFO with ``-v`` (ggml's
    lines included), errors a user can fix on one stderr line and exit status 1."""
    import importlib

    from . import sync_log_levels

    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(name)s: %(message)s")
    host_module = importlib.import_module(package)  # registers the host and its log routing
    sync_log_levels()

    def show_info() -> None:
        print_info(host_module.info(), args.json)

    action = commands.get(args.command) or (show_info if args.command == "info" else None)
    if action is None:
        raise KeyError(f"{package}: no action for the subcommand {args.command!r}")
    return run_command(package, args.command, action)


def run_command(package: str, command: str, action: Callable[[], object]) -> int:
    """Run a console-script command: 0, or 1 with the error on one stderr line (no traceback)
    for what a user can fix: a missing file, a bad value, a model that will not load."""
    try:
        action()
    except (OSError, ValueError, RuntimeError, ImportError) as e:
        print(f"{package} {command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


def print_info(data: Mapping[str, Any], as_json: bool) -> None:
    """Print a host's ``info()`` (its ``info`` command): JSON, or the lines of :func:`describe`."""
    print(json.dumps(data, indent=2) if as_json else "\n".join(describe(data)))


def describe(data: Mapping[str, Any]) -> list[str]:
    """Human-readable lines of ``Host.info()`` (each package's ``info`` command)."""
    library = " ".join(str(v) for v in (data["library"], data["library_version"]) if v)
    out = [f"{data['package']} {data['version']}" + (f" ({library})" if library else "")]
    out.append(f"ggml {data['ggml_version']}  ABI fingerprint {data['fingerprint']}  "
               f"backend API {data['backend_api_version']}  family API {data['family_api']}")
    out += describe_cpu(data)
    out += describe_plugins(data["plugins"])
    out += describe_backends(data["backends"])
    return out


def describe_cpu(data: Mapping[str, Any]) -> list[str]:
    """The CPU module chosen (and which host loaded it) and every variant's score."""
    ranked = sorted(data["cpu_scores"].items(), key=lambda kv: -kv[1])
    return [f"CPU module: {data['cpu_module']} (loaded by {data['cpu_module_loaded_by']})",
            "CPU variants (score, 0 = cannot run here): "
            + ", ".join(f"{name} {score}" for name, score in ranked)]


def describe_plugins(plugins: list[Mapping[str, Any]]) -> list[str]:
    """One line per plugin entry point and what became of it."""
    out = ["Plugins (entry points 'ggml.backends'):" + ("" if plugins else " none installed")]
    for p in plugins:
        reason = f": {p['reason']}" if p["reason"] else ""
        out.append(f"  {p['name']} ({p['distribution']} {p['version']}, fingerprint "
                   f"{p['fingerprint']}): {p['state']}{reason}")
    return out


def describe_backends(backends: list[Mapping[str, Any]]) -> list[str]:
    """The registered backends with their devices and features."""
    out = ["Registered backends:"]
    for reg in backends:
        out.append(f"  {reg['name']}")
        for dev in reg["devices"]:
            where = ("remote (RPC)" if dev.get("remote")
                     else f"{dev['memory_total'] / 2**30:.1f} GiB")
            out.append(f"    device {dev['name']} [{dev['type']}] {dev['description']}, {where}")
        if reg["features"]:
            out.append("    features: " + " ".join(k for k, v in reg["features"] if v == "1"))
    return out
