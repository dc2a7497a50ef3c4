#!/usr/bin/env python3
"""The benchmarks of ``nox -s bench``: each mode builds the upstream tool it compares against
(tools/bench, the hosts' pins, into build/bench/) and starts its runner.

    python tools/bench/run.py [MODE] [ARGS...]

- ``imports``: each host's import time against ``python -c pass`` (import_time.py)
- ``llm``: cyllama against llama-bench (llm_bench.py)
- ``whisper``: cywhisper against whisper-cli (whisper_bench.py)
- ``sd``: cysd against sd-cli, pixels first (txt2img with two samplers, img2img:
  packages/cysd/tests/test_sd_cli.py), then the timing (sd_bench.py)
- ``vulkan``: cyllama with every layer on the first Vulkan device (lavapipe where there is no
  GPU) against llama-bench with the same ggml-vulkan-plugin module (pp64/tg16 by default:
  lavapipe is slow)
- ``server``: ``cyllama serve`` against llama-server (8 slots, 1/4/8 concurrent clients
  streaming 128-token completions: aggregate tokens/s and time to first token; server_bench.py)
- ``rpc``: cyllama with every layer on two loopback RPC servers against a local run (pp and tg
  ratios, the same greedy text; rpc_bench.py)

Without MODE: imports, llm, whisper and sd. ARGS pass on to the mode's runner (to each of the
four without MODE). The hosts, the models and the runners' packages must be installed (the
session does it); CMake and Ninja build the upstream tools.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "release"))
import vulkan_wheel

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "bench"
BIN = BUILD / "bin"
MODES = ("llm", "whisper", "sd", "imports", "vulkan", "server", "rpc")
DEFAULT = ("imports", "llm", "whisper", "sd")
# The upstream tool each mode runs against (imports and rpc: none).
TARGETS = {"llm": "llama-bench", "whisper": "whisper-cli", "sd": "sd-cli",
           "vulkan": "llama-bench", "server": "llama-server"}


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    """Run ``cmd`` in the repository root, echoed first."""
    args = [str(c) for c in cmd]
    print(f"bench> {shlex.join(args)}", flush=True)
    subprocess.run(args, cwd=ROOT, env=None if env is None else os.environ | env, check=True)


def runner(name: str, *args: str | Path, env: dict[str, str] | None = None) -> None:
    run(sys.executable, f"tools/bench/{name}.py", *args, env=env)


def vulkan(args: list[str]) -> None:
    """llm_bench on the Vulkan plugin: the wheel unpacked for cyllama, and a copy of llama-bench
    with the same module beside it (ggml loads the backends in the executable's folder; the
    CPU-only llama-bench stays as it is)."""
    vulkan_wheel.check_tools("the Vulkan benchmark")
    wheel = vulkan_wheel.build(BUILD / "vulkan-plugin")
    site, bin_dir = BUILD / "vulkan-site", BUILD / "vulkan-bin"
    for d in (site, bin_dir):
        shutil.rmtree(d, ignore_errors=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    bin_dir.mkdir()
    for f in [BIN / "llama-bench", *BIN.glob("libggml*.so"),
              site / "ggml_vulkan_plugin" / "libggml-vulkan.so"]:
        shutil.copy2(f, bin_dir / f.name)
    env = {"GGML_VK_VISIBLE_DEVICES": os.environ.get("GGML_VK_VISIBLE_DEVICES", "0")}
    runner("llm_bench", "--llama-bench", bin_dir / "llama-bench", "--plugin-site", site,
           "-p", "64", "-n", "16", "--runs", "3", "--reps", "1", *args, env=env)


def bench(mode: str, args: list[str]) -> None:
    match mode:
        case "imports":
            runner("import_time", "--details", *args)
        case "llm":
            runner("llm_bench", "--llama-bench", BIN / "llama-bench", *args)
        case "whisper":
            runner("whisper_bench", "--whisper-cli", BIN / "whisper-cli", *args)
        case "sd":
            run(sys.executable, "-m", "pytest", "-q", "packages/cysd/tests/test_sd_cli.py",
                env={"CYSD_SD_CLI": str(BIN / "sd-cli")})
            runner("sd_bench", "--sd-cli", BIN / "sd-cli", *args)
        case "vulkan":
            vulkan(args)
        case "server":
            runner("server_bench", "--llama-server", BIN / "llama-server", *args)
        case "rpc":
            runner("rpc_bench", *args)


def parse(argv: list[str]) -> tuple[str | None, list[str]]:
    """(the mode, None for the default run; the arguments for its runner or runners)."""
    parser = argparse.ArgumentParser(usage="%(prog)s [MODE] [ARGS...]",
                                     description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=MODES,
                        help="one benchmark (default: imports, llm, whisper and sd)")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="passed on to the runner (to each runner without MODE)")
    if argv[:1] and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return None, argv  # the default run, its runners' options first
    ns = parser.parse_args(argv)
    return ns.mode, ns.args


def main() -> int:
    mode, args = parse(sys.argv[1:])
    modes = [mode] if mode else list(DEFAULT)
    targets = list(dict.fromkeys(TARGETS[m] for m in modes if m in TARGETS))
    try:
        if targets:
            run("cmake", "-S", "tools/bench", "-B", BUILD, "-G", "Ninja",
                "-DCMAKE_BUILD_TYPE=Release")
            run("cmake", "--build", BUILD, "--target", *targets)
        for m in modes:
            bench(m, args)
    except subprocess.CalledProcessError as e:
        sys.exit(f"bench: {shlex.join(map(str, e.cmd))} failed (exit status {e.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
