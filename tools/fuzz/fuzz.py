#!/usr/bin/env python3
"""Mutation fuzzing of everything the family reads: each case must end in a typed exception or
a successful load and run, never a signal, an abort, a hang or an untyped Python error.

Cases are generated, never stored: a format's base input (a tiny fixture, a valid grammar or
schema) and a case index give the mutation, seeded, so a case is reproducible from its name.
A worker process goes through the cases of one format; when it dies or hangs, the case is
recorded and a new worker goes on with the next one.

    python tools/fuzz/fuzz.py                       # every format, 500 cases each
    python tools/fuzz/fuzz.py --cases 100 --formats gguf-llama,gbnf
    python tools/fuzz/fuzz.py --show gguf-llama:123 --write case.bin   # one case, to debug
    python tools/fuzz/fuzz.py --sweep               # every header field at each boundary value
    python tools/fuzz/fuzz.py --sweep-once          # every header field once (the CI's slice)

The sweep (sweep.py) is structure-aware, deterministic and exhaustive: each case sets one field
of a format's base input (found by walking it as its loader does) to one boundary value.

Prints one line per format with its counts and exits 1 on any death, hang or untyped error,
naming the cases.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "fixtures"))

import formats  # noqa: E402 (after the path)
import sweep  # noqa: E402


@dataclass
class Tally:
    name: str
    cases: int = 0
    errors: int = 0  # typed exceptions
    ran: int = 0  # loaded (and ran) fine
    bad: list[str] = field(default_factory=list)  # deaths, hangs, untyped errors
    kinds: dict[str, int] = field(default_factory=dict)  # exception type -> count
    seconds: float = 0.0

    def line(self) -> str:
        top = ", ".join(f"{k} {v}" for k, v in sorted(self.kinds.items(), key=lambda kv: -kv[1]))
        return (f"{self.name:<14} {self.cases:5d} cases: {self.errors:5d} typed errors, "
                f"{self.ran:5d} ran, {len(self.bad)} failures ({self.seconds:.1f} s)"
                + (f"  [{top}]" if top else ""))


class Worker:
    """A child process running the cases of one format, fed indices on stdin."""

    def __init__(self, fmt: str, seed: int, mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(HERE / "worker.py"), fmt, str(seed), mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # GGML_NO_BACKTRACE: an abort ends the worker without starting gdb on it.
            env={**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONFAULTHANDLER": "1",
                 "GGML_NO_BACKTRACE": "1"})
        self.stderr_tail = ""

    def run(self, index: int, timeout: float) -> tuple[str, str]:
        """(outcome, detail) of one case: outcome is ok, error, untyped, died or hang."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(f"{index}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._died()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            return "hang", f"no answer within {timeout:.0f} s"
        line = self.proc.stdout.readline()
        if not line:
            return self._died()
        outcome, _, detail = line.rstrip("\n").partition(" ")
        return outcome, detail

    def _died(self) -> tuple[str, str]:
        rc = self.proc.wait()
        assert self.proc.stderr is not None
        err = [ln for ln in self.proc.stderr.read().splitlines() if ln.strip()]
        why = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"
        last = next((ln for ln in reversed(err) if "Error" in ln or "ASSERT" in ln or
                     "error" in ln), err[-1] if err else "")
        return "died", f"{why}: {last.strip()[:300]}"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()


def describe(fmt: str, seed: int, mode: str, index: int) -> str:
    """What case ``index`` of a format is, in the mode's cases (random, sweep, sweep-once)."""
    if mode == "random":
        return formats.describe(fmt, seed, index)
    return sweep.case(fmt, index, once=mode == "sweep-once")[1]


def fuzz_format(fmt: str, cases: int, seed: int, timeout: float, mode: str = "random") -> Tally:
    tally = Tally(fmt if mode == "random" else f"{fmt} ({mode})")
    t0 = time.perf_counter()
    worker: Worker | None = None
    for i in range(cases):
        if worker is None:
            worker = Worker(fmt, seed, mode)
        outcome, detail = worker.run(i, timeout)
        tally.cases += 1
        if outcome == "ok":
            tally.ran += 1
        elif outcome == "error":
            tally.errors += 1
            kind = detail.split(":", 1)[0]
            tally.kinds[kind] = tally.kinds.get(kind, 0) + 1
        else:
            tally.bad.append(f"{fmt}:{i} ({describe(fmt, seed, mode, i)}): {outcome}: "
                             f"{detail}")
            if outcome in ("died", "hang"):
                worker.close()
                worker = None
    if worker is not None:
        worker.close()
    tally.seconds = time.perf_counter() - t0
    return tally


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=None,
                    help="cases per format (random: default 500; sweep: at most this many)")
    ap.add_argument("--formats", default=None,
                    help=f"comma-separated, of: {', '.join(formats.FORMATS)} (default: all; "
                         f"the sweep has {', '.join(sweep.FORMATS)})")
    modes = ap.add_mutually_exclusive_group()
    modes.add_argument("--sweep", action="store_const", const="sweep", dest="mode",
                       help="the structure-aware sweep instead of random mutations")
    modes.add_argument("--sweep-once", action="store_const", const="sweep-once", dest="mode",
                       help="the sweep with one value per field")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    ap.add_argument("--show", metavar="FORMAT:INDEX", help="describe one case (and --write it)")
    ap.add_argument("--write", type=Path, help="with --show: write the case's input there")
    args = ap.parse_args(argv)
    mode = args.mode or "random"
    known = formats.FORMATS if mode == "random" else sweep.FORMATS
    if args.show:
        fmt, _, index = args.show.partition(":")
        print(describe(fmt, args.seed, mode, int(index)))
        if args.write:
            data = (formats.case_bytes(fmt, args.seed, int(index)) if mode == "random"
                    else sweep.case(fmt, int(index), once=mode == "sweep-once")[0])
            args.write.write_bytes(data)
            print(f"written to {args.write}")
        return 0
    chosen = [f for f in (args.formats or ",".join(known)).split(",") if f]
    unknown = [f for f in chosen if f not in (*known, "selftest")]
    if unknown:
        ap.error(f"unknown format(s) {', '.join(unknown)}; known: {', '.join(known)}")
    failures = []
    for fmt in chosen:
        if mode == "random":
            cases = 500 if args.cases is None else args.cases
        else:
            cases = sweep.count(fmt, once=mode == "sweep-once")
            cases = cases if args.cases is None else min(cases, args.cases)
        tally = fuzz_format(fmt, cases, args.seed, args.timeout, mode)
        print(tally.line(), flush=True)
        failures += tally.bad
    for f in failures:
        print(f"FAILED {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
