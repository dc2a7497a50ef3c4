# The one ggml of the family, built the same way for every package (cyllama, cywhisper, cysd,
# the GPU plugin and the family/benchmark checks). Include this file, then call
#
#   ggml_family_add_ggml()                  # adds ggml from the pinned llama.cpp tree
#   ggml_family_add_llama(ON|OFF)           # adds llama.cpp (static libllama) on it (and ggml
#   ggml_family_add_whisper(ON|OFF)         #   first if not yet); whisper.cpp (ON: examples);
#   ggml_family_add_sd(ON|OFF)              #   stable-diffusion.cpp
#   ggml_family_install(<pkg> <libdir>)     # installs ggml into the wheel, component <pkg>
#   ggml_family_extension(<target>)         # symbol hygiene + rpath for a nanobind extension
#   ggml_family_host(<pkg> SOURCES ... [LIBRARIES ...] [INCLUDES ...])
#                                           # a host package: <pkg>._core and ggml in the wheel
#
# Settings (cache variables, set with -C cmake.define.X=... or in pyproject):
#   GGML_FAMILY_CPU      "all" (every CPU variant as a loadable module: release) or "host"
#                        (one module for the x86-64-v3/haswell level: quick developer builds)
#   GGML_FAMILY_SANITIZE ON: every target of the build (ggml, upstream, bindings) compiled with
#                        AddressSanitizer and UndefinedBehaviorSanitizer, any UB report fatal
#                        (nox -s sanitize; GCC or Clang; never for a release)
#
# Everything that changes the ggml ABI is set here once, and it all goes into the fingerprint.

include_guard(GLOBAL)

set(GGML_FAMILY_DIR "${CMAKE_CURRENT_LIST_DIR}")
set(GGML_FAMILY_CPU "all" CACHE STRING "CPU backend modules: all (every ISA variant) or host")
set_property(CACHE GGML_FAMILY_CPU PROPERTY STRINGS all host)
option(GGML_FAMILY_SANITIZE "Build everything with ASan and UBSan (testing only)" OFF)

# Defines that change the layout of ggml structs. stable-diffusion.cpp needs 128-byte tensor
# names (llama.cpp defaults to 64); ggml_tensor changes size with it, so every target of the
# family, and every plugin, must agree.
set(GGML_FAMILY_LAYOUT_DEFINES "GGML_MAX_NAME=128")

# Locate a patched upstream tree: inside an sdist it was force-included as _upstream/<key>;
# in a git checkout tools/upstream.py fetches, verifies and patches it into .upstream/<key>.
function(ggml_family_upstream key out_var)
  # (The plugin's sdist carries only llama.cpp's ggml/ folder, not its top CMakeLists.txt.)
  if(IS_DIRECTORY "${CMAKE_SOURCE_DIR}/_upstream/${key}")
    set(${out_var} "${CMAKE_SOURCE_DIR}/_upstream/${key}" PARENT_SCOPE)
    return()
  endif()
  get_filename_component(_repo "${GGML_FAMILY_DIR}/../../.." ABSOLUTE)  # packages/ggml-family/native
  if(NOT EXISTS "${_repo}/tools/upstream.py")
    message(FATAL_ERROR "ggml family: no _upstream/${key} (sdist) and no tools/upstream.py "
                        "(checkout) found: cannot locate the ${key} sources")
  endif()
  find_package(Python COMPONENTS Interpreter REQUIRED)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" "${_repo}/tools/upstream.py" path "${key}"
    OUTPUT_VARIABLE _path ERROR_VARIABLE _err RESULT_VARIABLE _rc
    OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "ggml family: fetching ${key} failed:\n${_err}")
  endif()
  set(${out_var} "${_path}" PARENT_SCOPE)
endfunction()

# The ggml ABI fingerprint: a short hash over the public ggml headers, the backend interface
# (ggml-backend-impl.h carries GGML_BACKEND_API_VERSION and the structs a backend module fills
# in) and the layout-changing defines. Equal fingerprints mean a backend module built for one
# host is safe in another.
function(ggml_family_fingerprint ggml_dir out_fp out_version out_api)
  file(GLOB _headers "${ggml_dir}/include/*.h")
  list(SORT _headers)
  list(APPEND _headers "${ggml_dir}/src/ggml-backend-impl.h")
  set(_acc "")
  foreach(_h IN LISTS _headers)
    file(SHA256 "${_h}" _hash)
    get_filename_component(_name "${_h}" NAME)
    string(APPEND _acc "${_name}:${_hash}\n")
  endforeach()
  file(STRINGS "${ggml_dir}/src/ggml-backend-impl.h" _api REGEX "define GGML_BACKEND_API_VERSION")
  string(REGEX MATCH "[0-9]+" _api "${_api}")
  file(STRINGS "${ggml_dir}/CMakeLists.txt" _ver REGEX "set\\(GGML_VERSION_(MAJOR|MINOR|PATCH) ")
  string(REGEX REPLACE "[^;]*GGML_VERSION_[A-Z]+ ([0-9]+)\\)" "\\1" _ver "${_ver}")
  string(REPLACE ";" "." _ver "${_ver}")
  # names: ggml's exported names carry the fingerprint (symbols.py); bump on a scheme change.
  string(APPEND _acc "api:${_api}\ndefines:${GGML_FAMILY_LAYOUT_DEFINES}\nnames:suffixed-1\n")
  string(SHA256 _fp "${_acc}")
  string(SUBSTRING "${_fp}" 0 12 _fp)
  set(${out_fp} "${_fp}" PARENT_SCOPE)
  set(${out_version} "${_ver}" PARENT_SCOPE)
  set(${out_api} "${_api}" PARENT_SCOPE)
endfunction()

# ggml's exported names get the fingerprint as a suffix (see symbols.py: a foreign ggml loaded
# earlier with RTLD_GLOBAL would otherwise interpose on the references between our objects).
# Force-includes the generated rename header into every C, C++ and CUDA target defined from here
# on in the calling directory and below: ggml, llama.cpp, whisper.cpp, sd.cpp, extensions, plugins.
function(ggml_family_rename_symbols ggml_dir fp)
  find_package(Python COMPONENTS Interpreter REQUIRED)
  set(_header "${CMAKE_BINARY_DIR}/ggml-family/ggml-family-names.h")
  execute_process(
    COMMAND "${Python_EXECUTABLE}" "${GGML_FAMILY_DIR}/symbols.py" header "${ggml_dir}" "${fp}"
            "${_header}"
    ERROR_VARIABLE _err RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "ggml family: writing the symbol rename header failed:\n${_err}")
  endif()
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${GGML_FAMILY_DIR}/symbols.py")
  if(MSVC)
    add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:/FI${_header}>")
  else()
    add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX,HIP>:-include${_header}>")
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:--pre-include=${_header}>")
endfunction()

macro(ggml_family_add_ggml)
  ggml_family_upstream(llama.cpp GGML_FAMILY_LLAMA_DIR)
  set(GGML_FAMILY_GGML_DIR "${GGML_FAMILY_LLAMA_DIR}/ggml")
  ggml_family_fingerprint("${GGML_FAMILY_GGML_DIR}" GGML_FAMILY_FINGERPRINT
                          GGML_FAMILY_GGML_VERSION GGML_FAMILY_BACKEND_API)
  ggml_family_rename_symbols("${GGML_FAMILY_GGML_DIR}" "${GGML_FAMILY_FINGERPRINT}")
  message(STATUS "ggml family: ggml ${GGML_FAMILY_GGML_VERSION}, backend API "
                 "${GGML_FAMILY_BACKEND_API}, fingerprint ${GGML_FAMILY_FINGERPRINT}, "
                 "CPU modules: ${GGML_FAMILY_CPU}")

  add_compile_definitions(${GGML_FAMILY_LAYOUT_DEFINES})
  if(GGML_FAMILY_SANITIZE)
    # Set here, before any upstream directory, so ggml, llama.cpp, whisper.cpp, sd.cpp and the
    # bindings are all instrumented (ggml's own GGML_SANITIZE_* options reach ggml only).
    # -fno-sanitize-recover: an undefined-behaviour report ends the process, so it fails the
    # test that caused it instead of scrolling by.
    add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer)
    add_link_options(-fsanitize=address,undefined)
    message(STATUS "ggml family: AddressSanitizer + UndefinedBehaviorSanitizer build")
  endif()
  # Upstream projects with old cmake_minimum_required must still honour our option values.
  set(CMAKE_POLICY_DEFAULT_CMP0077 NEW)
  # Export only what is marked GGML_API / LLAMA_API / WHISPER_API ..., as on Windows.
  set(CMAKE_C_VISIBILITY_PRESET hidden)
  set(CMAKE_CXX_VISIBILITY_PRESET hidden)
  set(CMAKE_CUDA_VISIBILITY_PRESET hidden)
  set(CMAKE_VISIBILITY_INLINES_HIDDEN ON)
  set(CMAKE_POSITION_INDEPENDENT_CODE ON)

  set(BUILD_SHARED_LIBS ON)
  set(GGML_BACKEND_DL ON)
  # ggml's RPC backend: one more module in every wheel (small, no dependencies; client and
  # server must be the same ggml build, which shipping it with the host guarantees). No RDMA:
  # it would make the wheels depend on the build machine's libibverbs.
  set(GGML_RPC ON)
  set(GGML_RPC_RDMA OFF CACHE BOOL "" FORCE)
  set(GGML_NATIVE OFF)
  # No OpenMP: ggml's own thread pool is as fast here and keeps libgomp out of the wheels.
  set(GGML_OPENMP OFF)
  # llama.cpp's own CMakeLists turns these on before adding ggml; we add ggml first, so we must
  # too: llamafile's sgemm is most of prompt-processing speed on CPU (1.5x measured here).
  set(GGML_LLAMAFILE ON)
  set(GGML_CUDA_GRAPHS ON)
  set(GGML_BUILD_TESTS OFF)
  set(GGML_BUILD_EXAMPLES OFF)
  set(GGML_CCACHE ON)
  # Apple silicon: Metal is one more backend module of the CPU wheel (every such Mac has it; the
  # shaders are embedded, so the module is self-contained).
  if(APPLE AND CMAKE_SYSTEM_PROCESSOR MATCHES "arm64|aarch64")
    set(GGML_METAL ON)
    set(GGML_METAL_EMBED_LIBRARY ON)
  endif()
  if(GGML_FAMILY_CPU STREQUAL "all")
    set(GGML_CPU_ALL_VARIANTS ON)
  elseif(GGML_FAMILY_CPU STREQUAL "host")
    set(GGML_CPU_ALL_VARIANTS OFF)
  else()
    message(FATAL_ERROR "GGML_FAMILY_CPU must be 'all' or 'host', not '${GGML_FAMILY_CPU}'")
  endif()

  add_subdirectory("${GGML_FAMILY_GGML_DIR}" "${CMAKE_BINARY_DIR}/ggml" EXCLUDE_FROM_ALL)

  # File names and sonames carry the fingerprint: different ggml builds never collide by
  # soname in one process, identical ones are shared. No version suffix: one file each.
  foreach(_t ggml-base ggml)
    set_target_properties(${_t} PROPERTIES OUTPUT_NAME "${_t}-${GGML_FAMILY_FINGERPRINT}")
    set_property(TARGET ${_t} PROPERTY VERSION)
    set_property(TARGET ${_t} PROPERTY SOVERSION)
    ggml_family_local_binding(${_t} library)
  endforeach()
  set_target_properties(ggml PROPERTIES INSTALL_RPATH "$ORIGIN")
  set_target_properties(ggml PROPERTIES BUILD_RPATH_USE_ORIGIN ON)

  set(GGML_FAMILY_BACKEND_MODULES ${GGML_AVAILABLE_BACKENDS})
  foreach(_m IN LISTS GGML_FAMILY_BACKEND_MODULES)
    set_property(TARGET ${_m} PROPERTY VERSION)
    set_property(TARGET ${_m} PROPERTY SOVERSION)
    set_target_properties(${_m} PROPERTIES INSTALL_RPATH "$ORIGIN" BUILD_RPATH_USE_ORIGIN ON)
    ggml_family_local_binding(${_m} backend)
  endforeach()
endmacro()

# llama.cpp on the family ggml, with libllama static (its users link it into one object).
# `with_common` also configures llama.cpp's `common` library (needed by its tools).
macro(ggml_family_add_llama with_common)
  if(NOT TARGET ggml-base)
    ggml_family_add_ggml()
  endif()
  set(BUILD_SHARED_LIBS OFF)
  set(LLAMA_BUILD_COMMON ${with_common})
  set(LLAMA_BUILD_TESTS OFF)
  set(LLAMA_BUILD_TOOLS OFF)
  set(LLAMA_BUILD_EXAMPLES OFF)
  set(LLAMA_BUILD_SERVER OFF)
  set(LLAMA_BUILD_APP OFF)
  set(LLAMA_OPENSSL OFF)
  add_subdirectory("${GGML_FAMILY_LLAMA_DIR}" "${CMAKE_BINARY_DIR}/llama.cpp" EXCLUDE_FROM_ALL)
endmacro()

# whisper.cpp on the family ggml (it uses the ggml target already defined). Its examples
# (whisper-cli, for the benchmark) come with_examples.
macro(ggml_family_add_whisper with_examples)
  if(NOT TARGET ggml-base)
    ggml_family_add_ggml()
  endif()
  ggml_family_upstream(whisper.cpp GGML_FAMILY_WHISPER_DIR)
  set(BUILD_SHARED_LIBS OFF)
  set(WHISPER_BUILD_TESTS OFF)
  set(WHISPER_BUILD_EXAMPLES ${with_examples})
  set(WHISPER_BUILD_SERVER OFF)
  set(WHISPER_SDL2 OFF)
  set(WHISPER_CURL OFF)
  set(WHISPER_FFMPEG OFF)
  set(WHISPER_ALL_WARNINGS OFF)
  add_subdirectory("${GGML_FAMILY_WHISPER_DIR}" "${CMAKE_BINARY_DIR}/whisper.cpp" EXCLUDE_FROM_ALL)
endmacro()

# stable-diffusion.cpp on the family ggml (it uses the ggml target already defined), static.
# Its examples (the `sd-cli` program, for the benchmark) come with_examples.
macro(ggml_family_add_sd with_examples)
  if(NOT TARGET ggml-base)
    ggml_family_add_ggml()
  endif()
  ggml_family_upstream(stable-diffusion.cpp GGML_FAMILY_SD_DIR)
  set(BUILD_SHARED_LIBS OFF)
  set(SD_BUILD_SHARED_LIBS OFF)
  set(SD_BUILD_EXAMPLES ${with_examples})
  set(SD_WEBP OFF)
  set(SD_WEBM OFF)
  # miniz (reading .ckpt zips) loads through misaligned pointers on x86 by default, undefined
  # behaviour that UBSan rightly reports on a fuzzed file; its portable byte loads cost nothing
  # that matters here (checkpoints are stored, not deflated).
  add_compile_definitions(MINIZ_USE_UNALIGNED_LOADS_AND_STORES=0)
  add_subdirectory("${GGML_FAMILY_SD_DIR}" "${CMAKE_BINARY_DIR}/stable-diffusion.cpp" EXCLUDE_FROM_ALL)
  # sd_version()/sd_commit(): the pinned sdist, from the tree's stamp (tools/upstream.py). Upstream
  # takes them from `git describe` (nothing in an sdist; our own repository in a checkout) and
  # sets them on version.cpp, where a target-wide definition would lose: replace them there.
  if(EXISTS "${GGML_FAMILY_SD_DIR}/.upstream-stamp.json")
    file(READ "${GGML_FAMILY_SD_DIR}/.upstream-stamp.json" _stamp)
    string(JSON _sdist GET "${_stamp}" sdist)      # stable-diffusion-cpp-python==0.4.7
    string(JSON _sha GET "${_stamp}" sha256)
    string(REPLACE "==" "-" _sdist "${_sdist}")
    string(SUBSTRING "${_sha}" 0 12 _sha)
    set_source_files_properties("${GGML_FAMILY_SD_DIR}/src/version.cpp"
      DIRECTORY "${GGML_FAMILY_SD_DIR}"
      PROPERTIES COMPILE_DEFINITIONS
        "SDCPP_BUILD_VERSION=${_sdist};SDCPP_BUILD_COMMIT=sdist-sha256-${_sha}")
  endif()
  # ggml_graph_cut.cpp uses ggml's internal header: take it from the family tree.
  target_include_directories(stable-diffusion PRIVATE "${GGML_FAMILY_GGML_DIR}/src")
endmacro()

# References inside one shared object bind to that object (references between our objects are
# protected by the fingerprinted names instead); static archives linked in export nothing.
# `exports` picks a version script from exports/: what the object may export.
function(ggml_family_local_binding target exports)
  if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
    set(_script "${GGML_FAMILY_DIR}/exports/${exports}.map")
    target_link_options(${target} PRIVATE "LINKER:-Bsymbolic" "LINKER:--exclude-libs,ALL"
                        "LINKER:--version-script=${_script}")
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS "${_script}")
  endif()
endfunction()

# Install libggml-base, libggml and the CPU modules into <libdir> of the wheel.
function(ggml_family_install component libdir)
  install(TARGETS ggml-base ggml ${GGML_FAMILY_BACKEND_MODULES}
          LIBRARY DESTINATION "${libdir}" COMPONENT ${component}
          RUNTIME DESTINATION "${libdir}" COMPONENT ${component})
endfunction()

# A Python extension of the family: finds the ggml libraries in ./lib, exports only PyInit_*,
# and knows its fingerprint.
function(ggml_family_extension target)
  target_compile_definitions(${target} PRIVATE
    GGML_FAMILY_FINGERPRINT="${GGML_FAMILY_FINGERPRINT}"
    GGML_FAMILY_GGML_VERSION="${GGML_FAMILY_GGML_VERSION}"
    GGML_FAMILY_BACKEND_API=${GGML_FAMILY_BACKEND_API})
  target_include_directories(${target} PRIVATE "${GGML_FAMILY_DIR}/include")
  foreach(_part log errors registry rpc)
    target_sources(${target} PRIVATE "${GGML_FAMILY_DIR}/src/${_part}.cpp")
  endforeach()
  target_link_libraries(${target} PRIVATE ggml ggml-base)
  if(APPLE)
    set_target_properties(${target} PROPERTIES INSTALL_RPATH "@loader_path/lib")
  else()
    set_target_properties(${target} PROPERTIES INSTALL_RPATH "$ORIGIN/lib")
  endif()
  ggml_family_local_binding(${target} extension)
endfunction()

# A host package of the family (cyllama, cywhisper, cysd): its private extension <pkg>._core
# (nanobind, stable ABI, built from SOURCES and linked to LIBRARIES, e.g. libllama), installed
# into <pkg>/ with the family ggml in <pkg>/lib. Call it after the library's ggml_family_add_*()
# (or ggml_family_add_ggml() for a host of ggml alone).
function(ggml_family_host pkg)
  cmake_parse_arguments(PARSE_ARGV 1 _host "" "" "SOURCES;LIBRARIES;INCLUDES")
  if(NOT SKBUILD)
    message(WARNING "Build this project with scikit-build-core: pip install packages/${pkg}")
  endif()
  if(NOT _host_SOURCES)
    message(FATAL_ERROR "ggml_family_host(${pkg}): no SOURCES")
  endif()
  find_package(Python 3.10 REQUIRED COMPONENTS Interpreter Development.Module
               ${SKBUILD_SABI_COMPONENT})
  find_package(nanobind CONFIG REQUIRED)
  nanobind_add_module(_core STABLE_ABI NB_STATIC NOMINSIZE NB_DOMAIN ${pkg} ${_host_SOURCES})
  if(_host_LIBRARIES)
    target_link_libraries(_core PRIVATE ${_host_LIBRARIES})
  endif()
  if(_host_INCLUDES)
    target_include_directories(_core PRIVATE ${_host_INCLUDES})
  endif()
  ggml_family_extension(_core)
  install(TARGETS _core LIBRARY DESTINATION ${pkg} COMPONENT ${pkg})
  ggml_family_install(${pkg} ${pkg}/lib)
endfunction()
