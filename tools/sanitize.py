#!/usr/bin/env python3
"""The sanitizer run of ``nox -s sanitize``: the hosts' test suites, a fuzz slice and the
structure sweep (tools/fuzz/sweep.py) against the hosts built with AddressSanitizer and
UndefinedBehaviorSanitizer (GCC; the session builds and installs them). Any report ends the
process that made it, so it fails its test or fuzz case. Every suite runs, whatever an earlier
one did; then the reports (build/sanitize/reports/) are printed, and the exit status is 1 if
anything failed or reported.

    python tools/sanitize.py [--fuzz-cases N] [PYTEST ARGS...]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOSTS = ("cyllama", "cywhisper", "cysd")
# Reports go to files: pytest captures a test's stderr, and a report that ends the process
# would go down with the capture.
REPORTS = ROOT / "build" / "sanitize" / "reports"
# detect_leaks=0: CPython itself never frees everything at exit (the leak tests measure RSS
# instead). allocator_may_return_null: a file claiming a huge size must meet the same failed
# allocation (std::bad_alloc, a typed error) as without ASan, not ASan's own abort.
ASAN_OPTIONS = ("detect_leaks=0:allocator_may_return_null=1:abort_on_error=0:halt_on_error=1:"
                "detect_stack_use_after_return=0:check_initialization_order=1")
UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1"


def preload() -> str:
    """LD_PRELOAD for an uninstrumented CPython: the ASan runtime must be loaded before anything
    else, and libstdc++ with it (ASan's __cxa_throw interceptor is resolved when it starts)."""
    paths = []
    for lib in ("libasan.so", "libstdc++.so"):
        path = subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True, text=True,
                              check=True).stdout.strip()
        if not Path(path).is_file():
            sys.exit(f"gcc's {lib} not found ({path!r}): apt-get install gcc g++")
        paths.append(path)
    return ":".join(paths)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                     epilog="Other arguments are passed on to pytest.")
    parser.add_argument("--fuzz-cases", type=int, default=50, metavar="N",
                        help="fuzz cases per format (default: 50; 0: no fuzzing)")
    opts, pytest_args = parser.parse_known_args()
    env = os.environ | {"LD_PRELOAD": preload(),
                        "ASAN_OPTIONS": f"{ASAN_OPTIONS}:log_path={REPORTS}/asan",
                        "UBSAN_OPTIONS": f"{UBSAN_OPTIONS}:log_path={REPORTS}/ubsan"}
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir(parents=True)
    runs = {pkg: [sys.executable, "-m", "pytest", f"packages/{pkg}/tests", "-p",
                  "no:cacheprovider", *pytest_args] for pkg in HOSTS}
    if opts.fuzz_cases:
        runs["fuzz"] = [sys.executable, "tools/fuzz/fuzz.py", "--cases", str(opts.fuzz_cases)]
        runs["sweep"] = [sys.executable, "tools/fuzz/fuzz.py", "--sweep"]
    failed = []
    for name, command in runs.items():
        print(f"sanitize> {shlex.join(command)}", flush=True)
        if subprocess.run(command, cwd=ROOT, env=env).returncode:
            failed.append(name)
    found = sorted(REPORTS.iterdir())
    for report in found:
        print(f"{report.name}:\n{report.read_text(errors='replace')[:20000]}")
    if failed or found:
        print(f"sanitize: failed: {', '.join(failed) or 'none'}; {len(found)} sanitizer "
              f"report(s) in {REPORTS}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
