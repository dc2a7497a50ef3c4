"""What the family's CUDA plugins share: one per CUDA major version (``ggml-cuda12-plugin``,
``ggml-cuda13-plugin``), each a thin package whose module delegates its names to a
:class:`CudaBuild` (``__getattr__ = PLUGIN.attribute``).

A build is declined *before* its module is loaded when the installed NVIDIA driver is too old
for its CUDA major version: :func:`driver_cuda_version` reads the CUDA version the driver
supports (``cuDriverGetVersion`` from ``libcuda.so.1``: neither a GPU nor ``cuInit`` needed).
Without that check a CUDA 13 module on an R550 driver loads, then finds no device or fails at the
first kernel. When both builds are installed the host (``_plugins``) tries the newer one first
and loads the first whose check passes; the other stays on standby.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["BUILDS", "DRIVER_BRANCH", "CudaBuild", "Declined", "DriverTooOld", "NoCodeForGpu",
           "cuda_version_text", "driver_cuda_version", "gpu_capabilities",
           "kernel_module_version", "runs_on"]

#: The distribution of the family's CUDA plugin for each CUDA major version.
BUILDS = {12: "ggml-cuda12-plugin", 13: "ggml-cuda13-plugin"}
#: The oldest Linux driver branch of each CUDA major version (NVIDIA's compatibility table: any
#: driver of that branch or newer runs every 12.x, resp. 13.x, runtime).
DRIVER_BRANCH = {11: "R450", 12: "R525", 13: "R580"}
# Where NVIDIA's runtime wheels put the libraries, relative to the ``nvidia`` namespace
# package: CUDA 12's wheels have one folder per library, CUDA 13's one for all.
_LIB_DIRS = {12: ("cuda_runtime/lib", "cublas/lib"), 13: ("cu13/lib",)}
_WHEELS = {12: ("nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12"),
           13: ("nvidia-cuda-runtime", "nvidia-cublas")}


class Declined(OSError):
    """This CUDA build cannot run here; found before its module is loaded. ``alternative``: the
    distribution of the family's build that can (None when none can)."""

    def __init__(self, message: str, *, alternative: str | None) -> None:
        super().__init__(message)
        self.alternative = alternative


class DriverTooOld(Declined):
    """The NVIDIA driver supports an older CUDA than the build's major version."""


class NoCodeForGpu(Declined):
    """A visible GPU has neither machine code nor PTX in the build: ggml would abort the
    process at its first kernel ("no kernel image is available")."""


def gpu_capabilities() -> list[tuple[int, int]]:
    """The compute capability of every GPU the driver shows (CUDA_VISIBLE_DEVICES applies);
    empty without a driver or a GPU. Uses the driver API (cuInit), not the runtime."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        if lib.cuInit(0) != 0:
            return []
        count = ctypes.c_int(0)
        if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return []
        found = []
        for ordinal in range(count.value):
            device, major, minor = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
            if (lib.cuDeviceGet(ctypes.byref(device), ordinal) != 0
                    or lib.cuDeviceGetAttribute(ctypes.byref(major), 75, device) != 0
                    or lib.cuDeviceGetAttribute(ctypes.byref(minor), 76, device) != 0):
                return []
            found.append((major.value, minor.value))
    except (OSError, AttributeError):
        return []
    return found


def runs_on(architectures: str, capability: tuple[int, int]) -> bool:
    """Whether a module built for CMake's CUDA ``architectures`` ("80-real;90-real",
    "75-virtual;80-real", "90") has code for a GPU of ``capability``: machine code of the same
    major version and a minor version not above it (sm_80 runs on 8.6 and 8.9), or PTX of an
    architecture not above it (compiled by the driver)."""
    for item in filter(None, (a.strip() for a in architectures.split(";"))):
        m = re.fullmatch(r"(\d+)(\d)([af]?)(?:-(real|virtual))?", item)
        if not m:
            continue
        arch = (int(m.group(1)), int(m.group(2)))
        specific = bool(m.group(3))  # 90a: that exact GPU only, no PTX forward
        if m.group(4) != "virtual" and (arch == capability or (not specific and (
                arch[0] == capability[0] and arch[1] <= capability[1]))):
            return True
        if m.group(4) != "real" and not specific and arch <= capability:
            return True
    return False


def cuda_version_text(version: int) -> str:
    """``12040`` -> ``"CUDA 12.4"`` (cuDriverGetVersion's units: 1000 * major + 10 * minor)."""
    return f"CUDA {version // 1000}.{version % 1000 // 10}"


def driver_cuda_version() -> int | None:
    """The CUDA version the installed NVIDIA driver supports (``cuDriverGetVersion``: 12040 for
    12.4), read without a GPU and without initialising CUDA; None without a driver library."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return version.value


def kernel_module_version() -> str:
    """The loaded NVIDIA kernel module's version ("550.54.15"), or "" when there is none."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return ""
    words = text.split("Kernel Module", 1)[-1].split()
    return words[0] if words and words[0][:1].isdigit() else ""


class CudaBuild:
    """One CUDA plugin package: its ``_build.json`` (written by the family's cuda_plugin.cmake)
    and the :class:`ggml_family.BackendPlugin` attributes, for its module to re-export."""

    BACKEND_NAME = "CUDA"

    def __init__(self, package_file: str) -> None:
        self.folder = Path(package_file).resolve().parent
        build = json.loads((self.folder / "_build.json").read_text())
        #: ggml ABI fingerprint and ggml version the module was built for.
        self.FINGERPRINT: str = build["fingerprint"]
        self.GGML_VERSION: str = build["ggml_version"]
        #: GPU architectures compiled in (``-real``: machine code, ``-virtual``: PTX).
        self.CUDA_ARCHITECTURES: str = build["cuda_architectures"]
        #: The CUDA major version of the build: its toolkit, runtime and cuBLAS.
        self.CUDA_MAJOR: int = int(build["cuda_major"])
        #: The CUDA version the driver must support (cuDriverGetVersion's units): any driver of
        #: the build's major version runs it (minor-version compatibility).
        self.CUDA_DRIVER_NEEDED: int = 1000 * self.CUDA_MAJOR
        #: When several plugins serve one backend, hosts try the highest first.
        self.PREFERENCE: int = self.CUDA_MAJOR
        self._handles: list[ctypes.CDLL] = []

    def attribute(self, name: str) -> Any:
        """The plugin module's ``__getattr__``: its names are this object's."""
        try:
            return getattr(self, name)
        except AttributeError:
            raise AttributeError(f"module {self.folder.name!r} has no attribute {name!r}") from None

    def library_path(self) -> str:
        """Absolute path of the backend module."""
        return str(self.folder / "libggml-cuda.so")

    def driver_cuda_version(self) -> int | None:
        """See :func:`driver_cuda_version`."""
        return driver_cuda_version()

    def driver_problem(self) -> Declined | None:
        """Why this build cannot run here (None: it can, or there is no driver or GPU, in which
        case the module loads and registers no device): a driver too old for its CUDA version
        (:class:`DriverTooOld`), or a GPU it has no code for (:class:`NoCodeForGpu`)."""
        found = driver_cuda_version()
        if found is None:
            return None
        if found >= self.CUDA_DRIVER_NEEDED:
            return self._gpu_problem()
        module = kernel_module_version()
        driver = f"driver {module}, " if module else ""
        major = self.CUDA_MAJOR
        older = [m for m in BUILDS if m < self.CUDA_MAJOR and found >= 1000 * m]
        alternative = BUILDS[max(older)] if older else None
        advice = (f"update the NVIDIA driver or install the CUDA {max(older)} build, "
                  f"{alternative}" if alternative else "update the NVIDIA driver")
        return DriverTooOld(
            f"the NVIDIA driver is too old: it supports {driver}{cuda_version_text(found)}, and "
            f"this plugin, built with CUDA {major}, needs a driver for "
            f"{cuda_version_text(self.CUDA_DRIVER_NEEDED)} or newer "
            f"({DRIVER_BRANCH.get(major, 'newer')} or later); {advice}", alternative=alternative)

    def no_device_hint(self) -> str:
        """Why the loaded module may have registered no device (for the host's warning): ggml's
        own line says "driver version is insufficient" when there is no driver at all."""
        branch = DRIVER_BRANCH.get(self.CUDA_MAJOR, "a recent")
        if driver_cuda_version() is None:
            return (f"no NVIDIA driver was found (libcuda.so.1 cannot be loaded): install the "
                    f"NVIDIA driver, {branch} or later for this build")
        if not gpu_capabilities():
            return ("the NVIDIA driver shows no GPU (check nvidia-smi, and CUDA_VISIBLE_DEVICES: "
                    f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
        return "the NVIDIA driver shows GPUs, but ggml's CUDA backend registered none"

    def _gpu_problem(self) -> NoCodeForGpu | None:
        for ordinal, capability in enumerate(gpu_capabilities()):
            if runs_on(self.CUDA_ARCHITECTURES, capability):
                continue
            cc = "{}.{}".format(*capability)
            newer = [m for m in BUILDS if m > self.CUDA_MAJOR]
            alternative = BUILDS[max(newer)] if newer and capability >= (7, 5) else None
            advice = (f"install the CUDA {max(newer)} build, which carries PTX for every GPU "
                      f"from Turing on (it needs an {DRIVER_BRANCH[max(newer)]}+ driver), "
                      f"{alternative}" if alternative else "use ggml-vulkan-plugin, which runs "
                      "on it (the host's [vulkan] extra)")
            return NoCodeForGpu(
                f"this plugin, built for CUDA architectures {self.CUDA_ARCHITECTURES}, has no "
                f"code for GPU {ordinal} (compute capability {cc}), and its first kernel there "
                f"would abort the process; hide that GPU with CUDA_VISIBLE_DEVICES or {advice}",
                alternative=alternative)
        return None

    def _runtime_library(self, name: str) -> Path:
        try:
            import nvidia  # type: ignore[import-not-found]  # the nvidia-* wheels
        except ImportError:
            roots: list[Path] = []
        else:
            roots = list(map(Path, nvidia.__path__))
        for root in roots:
            for sub in _LIB_DIRS[self.CUDA_MAJOR]:
                candidate = root / sub / name
                if candidate.exists():
                    return candidate
        wheels = " ".join(f"'{w}>={self.CUDA_MAJOR},<{self.CUDA_MAJOR + 1}'"
                          for w in _WHEELS[self.CUDA_MAJOR])
        raise OSError(f"{name} not found in the nvidia-* wheels; reinstall them: "
                      f"pip install --force-reinstall {wheels}")

    def initialize(self) -> None:
        """Check the driver (:meth:`driver_problem`, raised), then preload the CUDA runtime and
        cuBLAS from the ``nvidia-*`` wheels, RTLD_GLOBAL in dependency order, so the module's
        NEEDED entries resolve by soname (idempotent)."""
        if self._handles:
            return
        if not sys.platform.startswith("linux"):
            raise OSError(f"the CUDA plugins support Linux only, not {sys.platform}")
        problem = self.driver_problem()
        if problem is not None:
            raise problem
        for stem in ("libcudart", "libcublasLt", "libcublas"):
            path = self._runtime_library(f"{stem}.so.{self.CUDA_MAJOR}")
            self._handles.append(ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL))
