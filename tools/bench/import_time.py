#!/usr/bin/env python3
"""Import cost of each family host, as whole processes against a bare interpreter.

    python tools/bench/import_time.py [--runs 15] [--details] [cyllama cywhisper cysd]

Runs ``python -c pass`` and ``python -c "import <host>"`` alternately (the order rotates every
round), ``--runs`` times each, and prints per host the median and minimum wall times, the
difference to the bare interpreter and the ratio. ``--details`` adds the slowest modules of one
import, from ``python -X importtime``. The budget (issue: within 100 ms of the bare interpreter)
is checked by tools/tests/test_import_cost.py.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from importlib.util import find_spec

HOSTS = ("cyllama", "cywhisper", "cysd")


def wall(code: str) -> float:
    """Seconds one fresh interpreter takes to run ``code`` and exit."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def measure(hosts: list[str], runs: int) -> dict[str, list[float]]:
    """Wall times per code ('pass' and each host), runs rounds in rotating order."""
    codes = ["pass", *(f"import {h}" for h in hosts)]
    for code in codes:  # warm the page cache and the bytecode caches
        wall(code)
    times: dict[str, list[float]] = {c: [] for c in codes}
    for i in range(runs):
        for code in codes[i % len(codes):] + codes[:i % len(codes)]:
            times[code].append(wall(code))
    return times


def slowest_modules(host: str, n: int = 12) -> list[tuple[int, str]]:
    """(cumulative microseconds, module) of the slowest top-level imports of ``import host``."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {host}"],
                         capture_output=True, text=True, check=True).stderr
    rows = []
    for line in out.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.removeprefix("import time:").split("|")
        if not name.startswith("   "):  # the top level of the import tree (one space)
            rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("hosts", nargs="*", default=[h for h in HOSTS if find_spec(h)])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--details", action="store_true")
    args = parser.parse_args(argv)
    times = measure(args.hosts, args.runs)
    bare = statistics.median(times["pass"])
    bare_min = min(times["pass"])
    print(f"python -c pass: median {bare * 1e3:.1f} ms, min {bare_min * 1e3:.1f} ms "
          f"({args.runs} runs each, alternating)")
    for host in args.hosts:
        t = times[f"import {host}"]
        med, low = statistics.median(t), min(t)
        print(f"import {host:10} median {med * 1e3:6.1f} ms (+{(med - bare) * 1e3:5.1f} ms, "
              f"{med / bare:.2f}x bare), min {low * 1e3:6.1f} ms (+{(low - bare_min) * 1e3:5.1f} "
              f"ms, {low / bare_min:.2f}x)")
        if args.details:
            for us, name in slowest_modules(host):
                print(f"    {us / 1e3:7.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
