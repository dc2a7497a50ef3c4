#!/usr/bin/env python3
"""dlopen the whisper.cpp and stable-diffusion.cpp libraries built on the family ggml.

Each library is opened with RTLD_NOW (every symbol resolved up front), must need the
fingerprinted libggml-base, and must work through the shared registry: the best CPU module is
loaded by path, then each library answers a call that goes through ggml.

    python tools/upstream_check/check.py BUILD_DIR
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path


def needed(lib: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(lib)], capture_output=True, text=True, check=True)
    return [line.split("[")[1].rstrip("]") for line in out.stdout.splitlines()
            if "(NEEDED)" in line]


def main() -> int:
    build = Path(sys.argv[1]).resolve()
    bindir = build / "bin"
    fp = json.loads((build / "family.json").read_text())["fingerprint"]
    base = ctypes.CDLL(str(bindir / f"libggml-base-{fp}.so"), mode=os.RTLD_NOW)
    ggml = ctypes.CDLL(str(bindir / f"libggml-{fp}.so"), mode=os.RTLD_NOW)
    print(f"family ggml {fp}: {base._name}, {ggml._name}")
    cpu = sorted(bindir.glob("libggml-cpu*.so"))
    # ggml's exported names carry the fingerprint (packages/ggml-family/native/symbols.py).
    backend_load = getattr(ggml, f"ggml_backend_load_{fp}")
    backend_load.restype = ctypes.c_void_p
    backend_load.argtypes = [ctypes.c_char_p]
    if not backend_load(str(cpu[-1]).encode()):
        raise SystemExit(f"could not load CPU module {cpu[-1]}")
    failures = 0
    for name, probe in (("libwhisper.so", "whisper_print_system_info"),
                        ("libstable-diffusion.so", "sd_get_system_info")):
        lib_path = next(bindir.glob(name + "*"), None) or next(build.rglob(name + "*"))
        deps = needed(lib_path)
        try:
            lib = ctypes.CDLL(str(lib_path), mode=os.RTLD_NOW)
        except OSError as exc:
            print(f"FAIL {name}: {exc}")
            failures += 1
            continue
        fn = getattr(lib, probe)
        fn.restype = ctypes.c_char_p
        info = fn().decode().strip().replace("\n", " ")
        ok = f"libggml-base-{fp}.so" in deps or f"libggml-{fp}.so" in deps
        print(f"{'ok' if ok else 'FAIL'} {name}: needs {', '.join(deps)}; {probe}() = {info}")
        failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
