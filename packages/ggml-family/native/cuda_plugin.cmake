# The family's CUDA plugins (packages/ggml-cuda-plugin/cuda12 and cuda13): ggml's CUDA
# backend built as a loadable module (GGML_BACKEND_DL) against the family ggml. Only
# libggml-cuda.so ships: it needs libggml-base-<fingerprint>.so by soname, which the host package
# (cyllama, cywhisper, cysd) has loaded when it loads the plugin.
#
#   ggml_family_cuda_plugin(<cuda major> <python package>)
#
# GGML_CUDA_PLUGIN_ARCHS: a CMake CUDA architecture list (development default 90-real), or
# `release` for the release list of the major version (docs/cuda.md has the sizes).
include_guard(GLOBAL)
include("${CMAKE_CURRENT_LIST_DIR}/family.cmake")

function(ggml_family_cuda_plugin major package)
  # The release architectures. CUDA 12 (R525+ drivers): machine code for Ampere/Ada (sm_80 code
  #   runs on every 8.x GPU: A100, A10, L4, L40, RTX 30/40) and Hopper (H100, H200).
  # CUDA 13 (R580+): as measured and proven on an H100 so far: sm_80 code and Turing PTX, which
  #   the driver compiles on first use for T4/RTX 20 and for every GPU newer than Ampere.
  set(_release_12 "80-real;90-real")
  set(_release_13 "75-virtual;80-real")
  set(GGML_CUDA_PLUGIN_ARCHS "90-real" CACHE STRING "CUDA architectures, or 'release'")
  if(GGML_CUDA_PLUGIN_ARCHS STREQUAL "release")
    set(CMAKE_CUDA_ARCHITECTURES "${_release_${major}}")
  else()
    set(CMAKE_CUDA_ARCHITECTURES "${GGML_CUDA_PLUGIN_ARCHS}")
  endif()

  # cuBLAS (and the runtime) from the nvidia-* wheels of the build environment: CUDA 13's wheels
  # hold every library in nvidia/cu13/{lib,include}, CUDA 12's one folder per library.
  if(major EQUAL 13)
    set(_lib "cu13/lib")
    set(_include "cu13/include")
    set(_rpath "$ORIGIN/../nvidia/cu13/lib")
  else()
    set(_lib "cublas/lib")
    set(_include "cublas/include")
    set(_rpath "$ORIGIN/../nvidia/cuda_runtime/lib:$ORIGIN/../nvidia/cublas/lib")
  endif()
  find_package(Python REQUIRED COMPONENTS Interpreter)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c
      "import nvidia, pathlib; print(next(p for p in map(pathlib.Path, nvidia.__path__) if (p / '${_lib}/libcublas.so.${major}').exists()))"
    OUTPUT_VARIABLE _nvidia OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "cuBLAS for CUDA ${major} (an nvidia-cublas wheel) is not installed in "
                        "the build environment")
  endif()
  set(CUDA_cublas_LIBRARY "${_nvidia}/${_lib}/libcublas.so.${major}" CACHE FILEPATH "" FORCE)
  set(CUDA_cublasLt_LIBRARY "${_nvidia}/${_lib}/libcublasLt.so.${major}" CACHE FILEPATH "" FORCE)
  # Only cuBLAS's headers: the folder is shared with nvidia-cuda-runtime, whose (newer) runtime
  # headers must not shadow the toolkit's (CCCL checks that nvcc and cudart headers agree).
  file(GLOB _cublas_headers "${_nvidia}/${_include}/cublas*.h")
  # Copied only when changed: pip installs the build requirements afresh for every build, with new
  # mtimes, and a plain file(COPY) would then rebuild all 144 CUDA objects (an hour per arch pair).
  file(MAKE_DIRECTORY "${CMAKE_BINARY_DIR}/cublas-include")
  foreach(_header IN LISTS _cublas_headers)
    get_filename_component(_name "${_header}" NAME)
    file(COPY_FILE "${_header}" "${CMAKE_BINARY_DIR}/cublas-include/${_name}" ONLY_IF_DIFFERENT)
  endforeach()
  include_directories(SYSTEM "${CMAKE_BINARY_DIR}/cublas-include")

  set(GGML_CUDA ON)
  # No libcuda.so stub in the toolkits here, and the module must load on machines without a
  # driver: without VMM, ggml-cuda does not link the driver API (it uses the runtime only).
  set(GGML_CUDA_NO_VMM ON)
  set(GGML_CUDA_NCCL OFF)
  # Fatbin compression. CUDA 13: uncompressed. ggml's default, -compress-mode=size, made every
  #   fatbin unloadable on an H100 with driver 580.159 (CUDA 13.0): the driver reported "Error
  #   handling fatbinary" and "No device code available for GPU ISA 90" for the sm_90 build too,
  #   then libcudart crashed at the first kernel. Built with none, the same source ran every test
  #   there. (nox -s gpu measures which modes load.)
  # CUDA 12: fatbinary's classic compression of every image (-compress-all; the toolkits before
  #   12.8 have no -compress-mode), the format every R525+ driver reads. It halves the module.
  if(NOT DEFINED CACHE{GGML_CUDA_COMPRESSION_MODE})
    if(major EQUAL 12)
      set(_mode default)  # toolkits 12.8+: the classic format, as 12.4's -compress-all below
    else()
      set(_mode none)
    endif()
    set(GGML_CUDA_COMPRESSION_MODE ${_mode} CACHE STRING "nvcc -compress-mode (CUDA 12.8+)")
  endif()
  if(major EQUAL 12)
    string(APPEND CMAKE_CUDA_FLAGS " -Xfatbin=-compress-all")
    set(_compression "classic (-compress-all)")
  else()
    set(_compression "${GGML_CUDA_COMPRESSION_MODE}")
  endif()
  ggml_family_add_ggml()

  # The runtime libraries are preloaded by ggml_family.cuda.CudaBuild.initialize(); the rpath is
  # the fallback for site-packages/<package> -> site-packages/nvidia/...
  set_target_properties(ggml-cuda PROPERTIES INSTALL_RPATH "${_rpath}")
  install(TARGETS ggml-cuda LIBRARY DESTINATION "${package}" COMPONENT cuda_plugin)

  # The compiler's version (CMAKE_CUDA_COMPILER_VERSION is set in ggml-cuda's folder only).
  execute_process(COMMAND "${CMAKE_CUDA_COMPILER}" --version OUTPUT_VARIABLE _nvcc_version)
  string(REGEX MATCH "release ([0-9.]+)" _ "${_nvcc_version}")
  set(_nvcc_version "${CMAKE_MATCH_1}")
  file(CONFIGURE OUTPUT "${CMAKE_BINARY_DIR}/_build.json" CONTENT [=[
{
  "fingerprint": "@GGML_FAMILY_FINGERPRINT@",
  "ggml_version": "@GGML_FAMILY_GGML_VERSION@",
  "cuda_major": @major@,
  "cuda_architectures": "@CMAKE_CUDA_ARCHITECTURES@",
  "cuda_compiler": "@_nvcc_version@",
  "compression": "@_compression@"
}
]=] @ONLY)
  install(FILES "${CMAKE_BINARY_DIR}/_build.json" DESTINATION "${package}" COMPONENT cuda_plugin)
endfunction()
