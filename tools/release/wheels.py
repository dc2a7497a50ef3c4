#!/usr/bin/env python3
"""The release, natively (what ``nox -s wheels`` runs): every sdist; every wheel built from its
unpacked sdist with no network; auditwheel repair grafting nothing; the audits of release.toml
(sizes, files, exported symbols, NEEDED, RPATHs) and the family check (audit.py); twine check;
then each wheel installed with --no-index into a clean venv, where its tests marked ``smoke`` run.

    python tools/release/wheels.py [--plugin-from DIR] [--dist DIR] [--work DIR]

``--plugin-from DIR`` takes the CUDA plugin wheels from DIR (built on a CUDA machine) instead of
building them here (GGML_CUDA_PLUGIN_ARCHS, default ``release``: about 40 min each on 2 cores;
CUDA 12 with tools/cuda12_toolkit.py's compiler, CUDA 13 with the nvcc on the PATH or in
/usr/local/cuda). The Vulkan plugin is always built here (glslc). Artifacts land in ``--dist``
(dist/, emptied first); unpacked sdists, build trees, the wheelhouse and the smoke venvs in
``--work`` (build/release/). Everything runs with this interpreter, whose environment must hold
the build tools (the session installs them); any failure ends it with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import NoReturn

from audit import load_rules
from vulkan_wheel import check_tools

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
RUNTIME = "ggml-family"
# Every distribution the release publishes and its kind: release.toml's [packages].
PACKAGES = {name: rules["kind"] for name, rules in load_rules()["packages"].items()}
HOSTS = tuple(name for name, kind in PACKAGES.items() if kind == "host")
# The CUDA plugins and the cuBLAS each one builds against (installed here when built here).
CUDA_PLUGINS = {"ggml-cuda12-plugin": "nvidia-cublas-cu12>=12.4,<13",
                "ggml-cuda13-plugin": "nvidia-cublas>=13.0,<14"}
# Distributions whose folder is not packages/<name>: the two builds of packages/ggml-cuda-plugin.
PACKAGE_DIRS = {"ggml-cuda12-plugin": "packages/ggml-cuda-plugin/cuda12",
                "ggml-cuda13-plugin": "packages/ggml-cuda-plugin/cuda13"}
RELEASE = tuple(PACKAGES)


def fail(message: str) -> NoReturn:
    sys.exit(f"wheels: {message}")


def run(*cmd: str | Path, env: dict[str, str] | None = None, capture: bool = False) -> str:
    """Run ``cmd`` in the repository root, echoed first; its stdout when ``capture``."""
    args = [str(c) for c in cmd]
    print(f"wheels> {shlex.join(args)}", flush=True)
    done = subprocess.run(args, cwd=ROOT, env=None if env is None else os.environ | env,
                          stdout=subprocess.PIPE if capture else None, text=True, check=True)
    return done.stdout or ""


def one(folder: Path, pattern: str) -> Path:
    """The one file of ``folder`` matching ``pattern``."""
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        fail(f"expected one {pattern} in {folder}, found {len(found)}")
    return found[0]


def stem(dist: str) -> str:
    """The name a distribution's sdist and wheel files start with."""
    return dist.replace("-", "_")


def cuda_compilers() -> dict[str, str]:
    """The nvcc for each CUDA plugin: CUDA 13's here, CUDA 12's from tools/cuda12_toolkit.py."""
    cuda13 = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    if not Path(cuda13).exists():
        fail("no CUDA 13 toolkit (nvcc) here: build the plugins on a CUDA machine and pass "
             "--plugin-from DIR")
    cuda12 = run(PYTHON, "tools/cuda12_toolkit.py", capture=True).strip().splitlines()[-1]
    return {"ggml-cuda12-plugin": cuda12, "ggml-cuda13-plugin": cuda13}


def build(dist: Path, work: Path, plugin_from: Path | None, nvcc: dict[str, str]) -> Path:
    """Every sdist into ``dist`` and every wheel (or the handed-in CUDA plugins) into the folder
    returned, unrepaired."""
    raw = work / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    raw.mkdir(parents=True)
    env = {"GGML_CUDA_PLUGIN_ARCHS": os.environ.get("GGML_CUDA_PLUGIN_ARCHS", "release")}
    offline = ["unshare", "--net", "--map-root-user"] if shutil.which("unshare") else []
    if not offline:
        print("warning: unshare is missing: the sdists are built into wheels with --no-index only",
              file=sys.stderr)
    for pkg in RELEASE:
        run(PYTHON, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check",
            "--outdir", dist, PACKAGE_DIRS.get(pkg, f"packages/{pkg}"))
        sdist = one(dist, f"{stem(pkg)}-*.tar.gz")
        if pkg in CUDA_PLUGINS and plugin_from is not None:
            handed = list(plugin_from.glob(f"{stem(pkg)}-*.whl"))
            if not handed:
                fail(f"no {pkg} wheel in {plugin_from}")
            for wheel in handed:
                shutil.copy2(wheel, raw / wheel.name)
            continue
        # From the sdist alone: no network, no git checkout, the build tools of this venv. It is
        # unpacked at a fixed place (not pip's random one) so that ccache hits on a rebuild.
        src = work / "src" / pkg
        shutil.rmtree(src, ignore_errors=True)
        with tarfile.open(sdist) as tar:
            tar.extractall(src, filter="data")
        run(*offline, PYTHON, "-m", "pip", "wheel", "--no-index", "--no-build-isolation",
            "--no-deps", "-w", raw, "-C", f"build-dir={work / 'build' / pkg}", one(src, "*"),
            env=env | ({"CUDACXX": nvcc[pkg]} if pkg in nvcc else {}))
    return raw


def smoke(dist: Path, work: Path) -> None:
    """Clean venvs, --no-index: the wheels (with their [test] extras) and a local wheelhouse of
    their dependencies only; the tests marked ``smoke`` run against the installed wheels."""
    house = work / "wheelhouse"
    cyllama = one(dist, "cyllama-*.whl")
    venvs = {pkg: [f"{one(dist, f'{pkg}-*.whl')}[test]"] for pkg in HOSTS}
    venvs["cysd"].append(str(one(dist, "cysd_tokenizers-*.whl")))
    for pkg in CUDA_PLUGINS:
        venvs[pkg] = [f"{cyllama}[test]", str(one(dist, f"{stem(pkg)}-*.whl"))]
    venvs["vulkan"] = [f"{cyllama}[test]", str(one(dist, "ggml_vulkan_plugin-*.whl"))]
    venvs[RUNTIME] = [f"{one(dist, f'{stem(RUNTIME)}-*.whl')}[test]"]
    # --find-links dist: the hosts' ggml-family comes from this release, not from an index.
    run(PYTHON, "-m", "pip", "download", "-q", "-d", house, "--find-links", dist,
        *sorted({r for reqs in venvs.values() for r in reqs}))
    for name, reqs in venvs.items():
        tests = ("packages/cyllama/tests" if name in ("vulkan", *CUDA_PLUGINS)
                 else f"packages/{name}/tests")
        venv = work / f"venv-{name}"
        shutil.rmtree(venv, ignore_errors=True)
        run(PYTHON, "-m", "venv", venv)
        python = venv / "bin" / "python"
        run(python, "-m", "pip", "install", "-q", "--no-index", "--find-links", house, *reqs)
        run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "smoke", tests)


def release(dist: Path, work: Path, plugin_from: Path | None) -> None:
    check_tools("the release")
    nvcc: dict[str, str] = {}
    if plugin_from is None:
        nvcc = cuda_compilers()
        run(PYTHON, "-m", "pip", "install", *CUDA_PLUGINS.values())  # the plugins' build needs
    run(PYTHON, "tools/upstream.py", "fetch")
    shutil.rmtree(dist, ignore_errors=True)
    raw = build(dist, work, plugin_from, nvcc)
    audit = (PYTHON, "tools/release/audit.py")
    run(*audit, "repair", dist, *sorted(raw.glob("*.whl")))
    run(*audit, "check", *sorted(dist.glob("*.whl")))
    run(PYTHON, "-m", "twine", "check", "--strict", *sorted(dist.iterdir()))
    smoke(dist, work)
    for f in sorted(dist.iterdir()):
        print(f"{f.name}: {f.stat().st_size / 1e6:.1f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plugin-from", type=Path, metavar="DIR",
                        help="take the CUDA plugin wheels from DIR instead of building them")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", metavar="DIR",
                        help="where the artifacts land, emptied first (default: dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "release", metavar="DIR",
                        help="sources, build trees and smoke venvs (default: build/release/)")
    args = parser.parse_args()
    plugin_from = args.plugin_from.resolve() if args.plugin_from else None
    if plugin_from is not None and not plugin_from.is_dir():
        fail(f"--plugin-from {plugin_from}: not a folder")
    try:
        release(args.dist.resolve(), args.work.resolve(), plugin_from)
    except subprocess.CalledProcessError as e:
        fail(f"{shlex.join(map(str, e.cmd))} failed (exit status {e.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
