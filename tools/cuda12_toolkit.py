"""A CUDA 12 compiler for building ggml-cuda12-plugin on a Debian/Ubuntu machine without one.

PyPI has no complete CUDA 12 compiler: ``nvidia-cuda-nvcc-cu12`` (12.9.86) holds ptxas, libnvvm
and headers only, with no ``nvcc`` driver, ``cicc``, ``cudafe++``, ``fatbinary`` or ``nvlink``
(CUDA 13's ``nvidia-cuda-nvcc`` is complete). Debian's ``nvidia-cuda-toolkit`` 12.4.131 (trixie,
non-free) is: this script downloads its packages with ``apt-get download`` (a private package
list, nothing installed system-wide), unpacks them and lays them out as a toolkit folder with
the usual bin/, nvvm/, include/ and lib64/, which CMake's CUDA support and nvcc.profile expect.

    python tools/cuda12_toolkit.py [--dest .cache/cuda12.4]   # prints the nvcc path

Then ``CUDACXX=<that path> pip wheel packages/ggml-cuda-plugin/cuda12`` (``nox -s wheels`` does it).
Release builds (cibuildwheel) take the same 12.4 from NVIDIA's RHEL repository instead.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VERSION = "12.4.131~12.4.1-2"
SOURCES = "deb http://deb.debian.org/debian trixie main contrib non-free\n"
# The compiler, the runtime headers and libraries, NVVM, and CCCL (cub, thrust, libcu++) that
# ggml's CUDA code includes; cuBLAS comes from the nvidia-cublas-cu12 wheel at build time.
PACKAGES = [f"nvidia-cuda-toolkit={VERSION}", "nvidia-cuda-dev=12.4.127~12.4.1-2",
            "libcudart12=12.4.127~12.4.1-2", f"libnvvm4={VERSION}", "libcub-dev", "libthrust-dev",
            "libcu++-dev"]
PROFILE = """\
TOP              = $(_HERE_)/..
NVVMIR_LIBRARY_DIR = $(TOP)/nvvm/libdevice
LD_LIBRARY_PATH += $(TOP)/lib64:
PATH            += $(TOP)/nvvm/bin:$(_HERE_):
INCLUDES        +=  "-I$(TOP)/include" $(_SPACE_)
LIBRARIES        =+ $(_SPACE_) "-L$(TOP)/lib64/stubs" "-L$(TOP)/lib64"
CUDAFE_FLAGS    +=
PTXAS_FLAGS     +=
"""
TOOLS = ("ptxas", "fatbinary", "nvlink", "cudafe++", "bin2c", "cuobjdump", "nvdisasm", "nvprune",
         "cu++filt")


def apt(args: list[str], state: Path, cwd: Path | None = None) -> None:
    options = [f"-oDir::Etc::SourceList={state / 'sources.list'}",
               "-oDir::Etc::SourceParts=/dev/null", f"-oDir::State::Lists={state / 'lists'}",
               "-oAPT::Sandbox::User=root"]
    subprocess.run(["apt-get", "-q", *options, *args], check=True, cwd=cwd)


def build(dest: Path) -> Path:
    nvcc = dest / "bin" / "nvcc"
    if nvcc.exists():
        return nvcc
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "lists" / "partial").mkdir(parents=True)
        (work / "sources.list").write_text(SOURCES)
        (work / "debs").mkdir()
        apt(["update"], work)
        apt(["download", *PACKAGES], work, cwd=work / "debs")
        root = work / "root"
        for deb in sorted((work / "debs").glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        usr, staging = root / "usr", dest.with_name(dest.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "bin").mkdir(parents=True)
        (staging / "nvvm" / "bin").mkdir(parents=True)
        (staging / "lib64").mkdir()
        kit = usr / "lib" / "nvidia-cuda-toolkit"
        shutil.copy2(kit / "bin" / "nvcc", staging / "bin" / "nvcc")
        shutil.copytree(kit / "bin" / "crt", staging / "bin" / "crt")
        shutil.copy2(kit / "bin" / "cicc", staging / "nvvm" / "bin" / "cicc")
        shutil.copytree(kit / "libdevice", staging / "nvvm" / "libdevice")
        for tool in TOOLS:
            shutil.copy2(usr / "bin" / tool, staging / "bin" / tool)
        shutil.copytree(usr / "include", staging / "include", symlinks=True)
        libs = usr / "lib" / "x86_64-linux-gnu"
        for pattern in ("libcudart.so*", "libcudart_static.a", "libcudadevrt.a", "libculibos.a"):
            for lib in libs.glob(pattern):
                shutil.copy2(lib, staging / "lib64" / lib.name, follow_symlinks=False)
        (staging / "bin" / "nvcc.profile").write_text(PROFILE)
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    return nvcc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".cache" / "cuda12.4",
                        help="toolkit folder (default: .cache/cuda12.4)")
    args = parser.parse_args()
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        sys.exit("apt-get and dpkg-deb are needed (Debian or Ubuntu)")
    nvcc = build(args.dest.resolve())
    version = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, check=True)
    print(version.stdout.strip().splitlines()[-1], file=sys.stderr)
    print(nvcc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
