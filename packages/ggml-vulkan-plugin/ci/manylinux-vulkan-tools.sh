#!/usr/bin/env bash
# The Vulkan build tools inside cibuildwheel's manylinux_2_28 image (AlmaLinux 8): the headers
# and loader from AppStream; glslc and SPIRV-Headers built from shaderc's release (the LunarG
# SDK's Linux binaries need a newer glibc than manylinux_2_28 has).
set -euo pipefail
SHADERC=v2025.3
dnf install -y vulkan-headers vulkan-loader-devel git ninja-build python3
src=/tmp/shaderc
git clone --depth 1 --branch "$SHADERC" https://github.com/google/shaderc "$src"
python3 "$src/utils/git-sync-deps"
cmake -S "$src" -B /tmp/shaderc-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSHADERC_SKIP_TESTS=ON -DSHADERC_SKIP_EXAMPLES=ON -DSPIRV_SKIP_TESTS=ON \
  -DENABLE_GLSLANG_BINARIES=OFF
cmake --build /tmp/shaderc-build --target glslc_exe
install -m 755 /tmp/shaderc-build/glslc/glslc /usr/local/bin/glslc
cmake -S "$src/third_party/spirv-headers" -B /tmp/spirv-headers-build -DSPIRV_HEADERS_ENABLE_TESTS=OFF
cmake --install /tmp/spirv-headers-build --prefix /usr/local
glslc --version
