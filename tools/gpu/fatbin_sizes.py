#!/usr/bin/env python3
"""What each architecture and fatbin compression mode costs in a CUDA plugin module, without
rebuilding it: every image of the module's fatbins (machine code per sm_XX, PTX per compute_XX)
is extracted with cuobjdump and packed again by fatbinary in each ``--compress-mode``; the
report gives, per image kind and mode, the bytes in the module and the bytes after the wheel's
zip deflate, and the module's host code (the module without its ``.nv_fatbin`` section) the same
way. A wheel's size is about the host code's plus the chosen images' deflated bytes.

    python tools/gpu/fatbin_sizes.py MODULE [--cuobjdump PATH] [--fatbinary PATH]

fatbinary must know ``--compress-mode`` (CUDA 12.8+); cuobjdump may be any (CUDA 13.0's wheel
has none: tools/cuda12_toolkit.py's 12.4 one reads CUDA 13 modules too).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODES = {"none": [], "default": ["--compress-all"], "speed": ["--compress-all"],
         "balance": ["--compress-all"], "size": ["--compress-all"]}


def deflated(data: bytes) -> int:
    return len(zlib.compress(data, 6))


def measure(module: Path, cuobjdump: str, fatbinary: str) -> dict[str, dict[str, list[int]]]:
    """{image kind ("elf sm_80", "ptx sm_75"): {mode: [module bytes, deflated bytes]}}, plus
    "host code": {"none": [...]}."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run([cuobjdump, "-xelf", "all", "-xptx", "all", str(module.resolve())],
                       cwd=work, check=True, capture_output=True)
        images = sorted(p for p in work.iterdir() if p.suffix in (".ptx", ".cubin"))

        def pack(args: tuple[Path, str]) -> tuple[str, str, int, int]:
            image, mode = args
            sm = re.search(r"sm_(\d+a?)", image.name)
            kind = "ptx" if image.suffix == ".ptx" else "elf"
            out = work / f"{image.name}.{mode}.fatbin"
            subprocess.run([fatbinary, "--64", f"--create={out}", f"--compress-mode={mode}",
                            *MODES[mode],
                            f"--image3=kind={kind},sm={sm.group(1) if sm else '0'},file={image}"],
                           check=True, capture_output=True)
            data = out.read_bytes()
            out.unlink()
            return f"{kind} sm_{sm.group(1) if sm else '?'}", mode, len(data), deflated(data)

        sizes: dict[str, dict[str, list[int]]] = {}
        with ThreadPoolExecutor() as pool:
            for key, mode, raw, zipped in pool.map(pack, [(i, m) for i in images for m in MODES]):
                total = sizes.setdefault(key, {}).setdefault(mode, [0, 0])
                total[0] += raw
                total[1] += zipped
        host = work / "host.so"
        subprocess.run(["objcopy", "--remove-section", ".nv_fatbin", str(module), str(host)],
                       check=True)
        images_bytes = sum(modes["none"][0] for modes in sizes.values())
        sizes["host code"] = {"none": [module.stat().st_size - images_bytes,
                                       deflated(host.read_bytes())]}
    return sizes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("module", type=Path)
    ap.add_argument("--cuobjdump", default=shutil.which("cuobjdump")
                    or str(ROOT / ".cache" / "cuda12.4" / "bin" / "cuobjdump"))
    ap.add_argument("--fatbinary",
                    default=shutil.which("fatbinary") or "/usr/local/cuda/bin/fatbinary")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = measure(args.module, args.cuobjdump, args.fatbinary)
    if args.json:
        print(json.dumps(sizes, indent=1))
        return 0
    print(f"{args.module} ({args.module.stat().st_size / 1e6:.1f} MB): MB in the module / "
          "MB deflated in a wheel")
    print(f"{'image':<12}" + "".join(f"{m:>16}" for m in MODES))
    for key, modes in sizes.items():
        cells = "".join(f"{modes[m][0] / 1e6:>8.1f}/{modes[m][1] / 1e6:<7.1f}" if m in modes
                        else f"{'':>16}" for m in MODES)
        print(f"{key:<12}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
