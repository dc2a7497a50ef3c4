#!/usr/bin/env python3
"""The ggml-vulkan-plugin wheel, built here for the hosts' Vulkan tests (``nox -s tests``, which
run it on Mesa's lavapipe) and the Vulkan benchmark (``nox -s bench -- vulkan``).

    python tools/release/vulkan_wheel.py OUT   # OUT emptied, then the wheel built into it

It is built with this interpreter's pip (and its CMake tree in packages/ggml-vulkan-plugin/build/).
Where the Vulkan build tools are missing (no glslc) it builds nothing and warns: the Vulkan tests
then skip, unless GGML_REQUIRE_VULKAN=1 (set by .ci/run) makes that an error (exit status 1).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the plugin's build needs, and lavapipe to run it on a machine without a GPU.
TOOLS = "apt-get install glslc libvulkan-dev spirv-headers mesa-vulkan-drivers"


def check_tools(required_by: str | None = None) -> bool:
    """Whether the Vulkan build tools are here. Without them: an exit saying that ``required_by``
    needs them, or (None) a warning that the Vulkan plugin tests will skip."""
    if shutil.which("glslc"):
        return True
    if required_by:
        sys.exit(f"{required_by} needs the Vulkan plugin, but glslc is missing: {TOOLS}")
    print(f"warning: glslc not found: the Vulkan plugin tests will skip ({TOOLS})",
          file=sys.stderr)
    return False


def build(out: Path) -> Path:
    """The plugin wheel, built into ``out`` (emptied first)."""
    shutil.rmtree(out, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                    "./packages/ggml-vulkan-plugin"], cwd=ROOT, check=True)
    (wheel,) = out.glob("*.whl")
    return wheel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder for the wheel (emptied first)")
    out = parser.parse_args().out.resolve()
    shutil.rmtree(out, ignore_errors=True)  # no stale wheel where none is built
    required = os.environ.get("GGML_REQUIRE_VULKAN", "") not in ("", "0")
    if check_tools("GGML_REQUIRE_VULKAN=1" if required else None):
        try:
            print(build(out))
        except subprocess.CalledProcessError as e:
            sys.exit(f"building the Vulkan plugin wheel failed (exit status {e.returncode})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
