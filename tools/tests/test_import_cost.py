"""Importing a host is cheap: no NumPy, no CPU module, within 100 ms of a bare interpreter.

What can wait for first use does: the CPU backend modules are scored and loaded by the first
model (or ``info()``), NumPy is imported by the code that handles arrays. The timing is taken as
whole processes (``tools/bench/import_time.py``), the fastest of several alternating runs, so
that a busy machine slows both sides alike.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec

import import_time
import pytest

HOSTS = [h for h in import_time.HOSTS if find_spec(h)]
pytestmark = pytest.mark.skipif(not HOSTS, reason="no family host is installed")

_PROBE = """
import json, sys, {host}
maps = open("/proc/self/maps").read() if sys.platform == "linux" else ""
print(json.dumps({{"numpy": "numpy" in sys.modules, "cpu_mapped": "libggml-cpu" in maps,
                  "cpu_module": str({host}._host.cpu_module)}}))
"""


@pytest.mark.parametrize("host", HOSTS)
def test_import_loads_no_numpy_and_no_cpu_module(host: str) -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(host=host)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"numpy": False, "cpu_mapped": False, "cpu_module": "None"}


@pytest.mark.parametrize("host", HOSTS)
def test_first_use_loads_them(host: str) -> None:
    code = (f"import json, sys, {host}; {host}.info(); "
            "print(json.dumps('libggml-cpu' in open('/proc/self/maps').read()))")
    if sys.platform != "linux":
        pytest.skip("reads /proc/self/maps")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "true"


def test_import_time_within_100_ms_of_the_bare_interpreter() -> None:
    times = import_time.measure(HOSTS, runs=7)
    bare = min(times["pass"])
    over = {h: (min(times[f"import {h}"]) - bare) * 1e3 for h in HOSTS}
    assert all(ms < 100 for ms in over.values()), f"import cost over the bare interpreter: {over}"
