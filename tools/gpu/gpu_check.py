#!/usr/bin/env python3
"""The GPU check: one prepared run that makes the most of a lent NVIDIA GPU (``nox -s gpu``).

Two steps. ``prepare`` (here, by ``nox -s gpu``) fills ``.gpu/`` (git-ignored, well under the
device tool's 64 MiB): CPython 3.12 wheels of ggml-family, cyllama, cywhisper and cysd (one CPU
module each: GGML_FAMILY_CPU=host), the gguf wheel the test fixtures write models with, the
ggml-cuda13-plugin sdist (the plugin is built on the GPU machine, whose 16 cores take minutes
where ours take 21) and llama-bench built from the pinned llama.cpp on the family ggml.

``run`` (on the GPU machine; here too, where it stops at the GPU step) writes one report,
``gpu-report.md`` and ``gpu-report.json`` under ``--out`` (rewritten after every stage, so a
run cut short still reports what it did):

1. facts: the GPU, driver, CUDA version the driver supports, nvcc;
2. installs the carried wheels into a private folder (no index, no network);
3. the compression probe: a small kernel built with every ``-compress-mode`` (none, default,
   speed, balance, size) as sm_90 machine code and as compute_75 PTX (JIT-compiled by the
   driver), each loaded like the plugin (beside the nvidia-* wheels' runtime) and run in its own
   process: which modes load on this driver, and the JIT's cost;
4. builds ggml-cuda13-plugin from the sdist (sm_90, the compression mode the probe proved best:
   ``size`` when it loads, else ``none``) and installs it;
5. the GPU-marked tests of the three hosts with that plugin;
6. the plugin's first-load time (host import + plugin load, and the first token);
7. cyllama against llama-bench with the same module (tools/bench/llm_bench.py): pp512 and tg128,
   every layer on the GPU, on a model of Gemma 3 270M's shape (random weights, Q8_0: the real
   model is 253 MB and the machine has no network);
8. cywhisper and cysd on the GPU against the CPU (the test fixtures' tiny models).

On the device (the tool's ``run``; $OUT comes back):

    python3 tools/gpu/gpu_check.py run --out $OUT        # carry: [".gpu"], timeout_s: 560

Nothing here needs nox on the GPU machine: its image has Python 3.12, numpy, pytest, CMake,
ninja, nvcc and the CUDA 13 runtime and cuBLAS wheels.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CARRY = ROOT / ".gpu"
HOSTS = ("cyllama", "cywhisper", "cysd")
MODES = ("none", "default", "speed", "balance", "size")
BUDGET_S = 530  # the device tool's command limit is 600 s: leave time to write the report
TESTS = [f"packages/{h}/tests/test_cuda_plugin.py" for h in HOSTS]
GEMMA_SHAPE = {"n_vocab": 262144, "n_embd": 640, "n_layer": 18, "n_head": 4, "n_head_kv": 1,
               "head_dim": 256, "n_ff": 2048}


def sh(cmd: list[str], *, timeout: float = 600, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


# -- prepare (here) ---------------------------------------------------------------------------

def prepare(carry: Path, python: str) -> None:
    """Build what the GPU machine needs into ``carry``."""
    wheels = carry / "wheels"
    shutil.rmtree(carry, ignore_errors=True)
    wheels.mkdir(parents=True)
    env = {**os.environ, "GGML_FAMILY_CPU": "host"}
    for pkg in ("ggml-family", *HOSTS):
        print(f"prepare: wheel of {pkg} for {python}", flush=True)
        subprocess.run([python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(wheels), f"packages/{pkg}"], check=True, cwd=ROOT, env=env)
    subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "-d", str(wheels), "gguf>=0.17"], check=True)
    print("prepare: sdist of ggml-cuda13-plugin", flush=True)
    subprocess.run([python, "-m", "build", "--sdist", "--no-isolation", "--skip-dependency-check",
                    "--outdir", str(carry), "packages/ggml-cuda-plugin/cuda13"], check=True,
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    print("prepare: llama-bench", flush=True)
    build = ROOT / "build" / "gpu-bench"
    subprocess.run(["cmake", "-S", "tools/bench", "-B", str(build), "-G", "Ninja",
                    "-DCMAKE_BUILD_TYPE=Release", "-DGGML_FAMILY_CPU=host"], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build), "--target", "llama-bench"], check=True,
                   stdout=subprocess.DEVNULL)
    bench = carry / "bench"
    bench.mkdir()
    for f in [build / "bin" / "llama-bench", *(build / "bin").glob("libggml*.so")]:
        shutil.copy2(f, bench / f.name)
    total = sum(f.stat().st_size for f in carry.rglob("*") if f.is_file())
    print(f"prepare: {carry} holds {total / 2**20:.1f} MiB (the device tool carries 64 MiB, "
          "with the working tree)")
    if total > 56 * 2**20:
        sys.exit("prepare: too large to carry")


# -- run (on the GPU machine) -----------------------------------------------------------------

class Report:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.start = time.monotonic()
        self.data: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                     "stages": {}}
        self.lines: list[str] = ["# GPU check report", ""]
        out.mkdir(parents=True, exist_ok=True)

    def left(self) -> float:
        return BUDGET_S - (time.monotonic() - self.start)

    def stage(self, name: str, result: dict[str, Any], text: str) -> None:
        result["elapsed_s"] = round(time.monotonic() - self.start, 1)
        self.data["stages"][name] = result
        self.lines += [f"## {name}", "", text.rstrip(), ""]
        print(f"== {name}\n{text.rstrip()}\n", flush=True)
        self.write()

    def write(self) -> None:
        (self.out / "gpu-report.json").write_text(json.dumps(self.data, indent=1))
        (self.out / "gpu-report.md").write_text("\n".join(self.lines) + "\n")


def nvcc_path() -> str | None:
    found = shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    return found if Path(found).exists() else None


def facts(report: Report) -> dict[str, Any]:
    smi = shutil.which("nvidia-smi")
    gpu = ""
    if smi:
        q = sh([smi, "--query-gpu=name,driver_version,memory.total,compute_cap",
                "--format=csv,noheader"], timeout=60)
        gpu = q.stdout.strip() if q.returncode == 0 else ""
    try:
        cuda_version = ctypes.c_int(0)
        ctypes.CDLL("libcuda.so.1").cuDriverGetVersion(ctypes.byref(cuda_version))
        driver_cuda: int | None = cuda_version.value
    except OSError:
        driver_cuda = None
    nvcc = nvcc_path()
    nvcc_version = sh([nvcc, "--version"]).stdout.strip().splitlines()[-1] if nvcc else ""
    result = {"gpu": gpu, "driver_cuda": driver_cuda, "nvcc": nvcc_version,
              "python": platform.python_version(), "cpus": os.cpu_count(),
              "machine": platform.node()}
    report.stage("facts", result, "\n".join(f"- {k}: {v}" for k, v in result.items()))
    return result


def install(carry: Path, site: Path, report: Report) -> None:
    shutil.rmtree(site, ignore_errors=True)
    wheels = sorted((carry / "wheels").glob("*.whl"))
    if not wheels:
        raise SystemExit(f"no wheels in {carry / 'wheels'}: run `nox -s gpu` (prepare) first")
    r = sh([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
            "--no-compile", "--target", str(site), *map(str, wheels)])
    if r.returncode != 0:
        raise SystemExit(f"installing the wheels failed:\n{r.stderr[-3000:]}")
    report.stage("install", {"wheels": [w.name for w in wheels]},
                 "\n".join(f"- {w.name}" for w in wheels))


def runtime_preload() -> str:
    """Python that preloads the nvidia-* wheels' CUDA 13 runtime, as the plugin does."""
    return ("import ctypes, nvidia, pathlib\n"
            "lib = next(p / 'cu13/lib/libcudart.so.13' for p in map(pathlib.Path, nvidia.__path__)"
            " if (p / 'cu13/lib/libcudart.so.13').exists())\n"
            "ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)\n")


def probe(report: Report, work: Path, gpu: bool) -> dict[str, Any]:
    """Which fatbin compression modes load and run here (sm_90 code and compute_75 PTX)."""
    nvcc = nvcc_path()
    if nvcc is None:
        report.stage("compression probe", {"skipped": "no nvcc"}, "skipped: no nvcc")
        return {}
    work.mkdir(parents=True, exist_ok=True)
    variants = [(mode, kind) for mode in MODES for kind in ("sm_90", "ptx_75")]

    def build(v: tuple[str, str]) -> tuple[str, str, str, int]:
        mode, kind = v
        gencode = ("arch=compute_90,code=sm_90" if kind == "sm_90"
                   else "arch=compute_75,code=compute_75")
        lib = work / f"probe-{mode}-{kind}.so"
        r = sh([nvcc, "-shared", "-Xcompiler", "-fPIC", "-cudart", "shared", "-gencode", gencode,
                f"-compress-mode={mode}", "-o", str(lib), str(ROOT / "tools/gpu/probe.cu")])
        return mode, kind, r.stderr.strip()[-500:] if r.returncode else "", (
            lib.stat().st_size if lib.exists() else 0)

    with ThreadPoolExecutor(8) as pool:
        built = list(pool.map(build, variants))
    results: dict[str, Any] = {}
    lines = ["| mode | image | library bytes | result | load+run s |", "|---|---|---|---|---|"]
    for mode, kind, error, size in built:
        entry: dict[str, Any] = {"bytes": size}
        if error:
            entry["result"] = f"build failed: {error}"
        elif not gpu:
            entry["result"] = "built; not run (no GPU here)"
        else:
            code = runtime_preload() + (
                "import time, sys\nt = time.perf_counter()\n"
                f"lib = ctypes.CDLL({str(work / f'probe-{mode}-{kind}.so')!r})\n"
                "buf = ctypes.create_string_buffer(256)\n"
                "rc = lib.probe(buf, 256)\n"
                "print(rc, round(time.perf_counter() - t, 3), buf.value.decode())\n")
            r = sh([sys.executable, "-c", code], timeout=120)
            if r.returncode != 0:
                entry["result"] = f"process died ({r.returncode}): {r.stderr.strip()[-300:]}"
            else:
                rc, seconds, message = r.stdout.split(" ", 2)
                entry.update(ok=rc == "0", seconds=float(seconds), result=message.strip())
        results[f"{mode}/{kind}"] = entry
        lines.append(f"| {mode} | {kind} | {size} | {entry['result']} | "
                     f"{entry.get('seconds', '')} |")
    report.stage("compression probe", results, "\n".join(lines))
    return results


def build_plugin(carry: Path, site: Path, work: Path, report: Report, gpu: bool,
                 probes: dict[str, Any]) -> bool:
    """ggml-cuda13-plugin from its sdist for sm_90, installed into ``site`` as pip would."""
    (sdist,) = carry.glob("ggml_cuda13_plugin-*.tar.gz")
    mode = "size" if probes.get("size/sm_90", {}).get("ok") else "none"
    src = work / "plugin-src"
    shutil.rmtree(src, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        tar.extractall(src, filter="data")
    (tree,) = src.iterdir()
    build = work / "plugin-build"
    cmake = ["cmake", "-S", str(tree), "-B", str(build), "-G", "Ninja",
             "-DCMAKE_BUILD_TYPE=Release", "-DSKBUILD_PROJECT_NAME=ggml_cuda13_plugin",
             "-DGGML_FAMILY_NATIVE=_family",  # what its pyproject sets for an sdist build
             "-DGGML_FAMILY_CPU=host", "-DGGML_CUDA_PLUGIN_ARCHS=90-real",
             f"-DGGML_CUDA_COMPRESSION_MODE={mode}", f"-DPython_EXECUTABLE={sys.executable}"]
    nvcc = nvcc_path()
    if nvcc:
        cmake.append(f"-DCMAKE_CUDA_COMPILER={nvcc}")
    t = time.monotonic()
    r = sh(cmake, timeout=300)
    if r.returncode != 0:
        report.stage("plugin build", {"ok": False, "error": r.stdout[-2000:] + r.stderr[-2000:]},
                     f"CMake configure failed:\n```\n{r.stdout[-1500:]}{r.stderr[-1500:]}\n```")
        return False
    configure_s = time.monotonic() - t
    if not gpu:
        # Here: show that the toolkit compiles ggml's CUDA code (one object), not the whole
        # 21-minute module.
        r = sh(["cmake", "--build", str(build), "--target",
                "ggml/src/ggml-cuda/CMakeFiles/ggml-cuda.dir/acc.cu.o"], timeout=600)
        ok = r.returncode == 0
        report.stage("plugin build", {"ok": ok, "configure_s": round(configure_s, 1),
                                      "mode": mode, "full_build": False},
                     f"configured in {configure_s:.0f} s (sm_90, compression {mode}); "
                     f"one CUDA object compiled: {'ok' if ok else r.stdout[-1500:]}; no GPU "
                     "here, so the module is not built (the GPU machine builds all of it)")
        return False
    r = sh(["cmake", "--build", str(build), "--target", "ggml-cuda", "-j", str(os.cpu_count())],
           timeout=max(60.0, report.left() - 240))
    build_s = time.monotonic() - t
    module = build / "bin" / "libggml-cuda.so"
    if not module.exists():
        module = next(build.rglob("libggml-cuda.so"), module)
    if r.returncode != 0 or not module.exists():
        report.stage("plugin build", {"ok": False, "seconds": round(build_s, 1)},
                     f"build failed after {build_s:.0f} s:\n```\n{r.stdout[-2500:]}\n```")
        return False
    pkg = site / "ggml_cuda13_plugin"
    pkg.mkdir(parents=True, exist_ok=True)
    shutil.copy2(module, pkg / "libggml-cuda.so")
    shutil.copy2(build / "_build.json", pkg / "_build.json")
    shutil.copy2(tree / "src" / "ggml_cuda13_plugin" / "__init__.py", pkg / "__init__.py")
    info = site / "ggml_cuda13_plugin-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ggml-cuda13-plugin\n"
                                   "Version: 0.1.0\n")
    (info / "entry_points.txt").write_text("[ggml.backends]\ncuda13 = ggml_cuda13_plugin\n")
    size = module.stat().st_size
    report.stage("plugin build", {"ok": True, "seconds": round(build_s, 1), "mode": mode,
                                  "module_bytes": size},
                 f"built in {build_s:.0f} s on {os.cpu_count()} cores: sm_90, compression "
                 f"{mode}, module {size / 1e6:.1f} MB")
    return True


def env_with(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GGML_PLUGIN")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(site), env.get("PYTHONPATH"))))
    env["GGML_PLUGIN_DISABLE"] = "vulkan"
    env.update(extra)
    return env


def tests(site: Path, report: Report) -> None:
    """Each host's GPU tests, one pytest per package (each has its own conftest and config)."""
    results, lines = {}, []
    for test in TESTS:
        r = sh([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", test],
               cwd=ROOT, env=env_with(site), timeout=max(60.0, (report.left() - 150) / 2))
        tail = "\n".join(r.stdout.strip().splitlines()[-12:])
        results[test] = {"rc": r.returncode, "tail": tail}
        lines += [f"`pytest {test}`: exit {r.returncode}", "```", tail, "```"]
    report.stage("GPU tests", results, "\n".join(lines))


FIRST_LOAD = """
import json, sys, time
t0 = time.perf_counter()
import cyllama
info = cyllama.info()
t1 = time.perf_counter()
llm = cyllama.LLM({model!r}, n_ctx=256)
t2 = time.perf_counter()
text = llm.generate("The", max_tokens=1).text
t3 = time.perf_counter()
print(json.dumps({{"import_and_plugins_s": t1 - t0, "model_load_s": t2 - t1,
                  "first_token_s": t3 - t2, "layers": llm.layer_devices,
                  "plugins": [(p["name"], p["state"]) for p in info["plugins"]]}}))
"""


def first_load(site: Path, model: Path, report: Report) -> None:
    rows = {}
    for name, extra in (("plugin", {}), ("cpu only", {"GGML_PLUGIN_DISABLE": "all"})):
        r = sh([sys.executable, "-c", FIRST_LOAD.format(model=str(model))],
               env=env_with(site, **extra), timeout=300)
        rows[name] = (json.loads(r.stdout.splitlines()[-1]) if r.returncode == 0
                      else {"error": r.stderr[-1500:]})
    lines = [f"- {name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in row.items()) for name, row in rows.items()]
    report.stage("first load", rows, "\n".join(lines))


def gemma_shaped(path: Path) -> Path:
    """A llama-architecture model with Gemma 3 270M's shape and random Q8_0 weights."""
    if path.exists():
        return path
    import gguf
    import numpy as np

    sys.path.insert(0, str(ROOT / "tools" / "fixtures"))
    from tiny_llama import save

    s = GEMMA_SHAPE
    rng = np.random.default_rng(7)
    q8 = gguf.GGMLQuantizationType.Q8_0
    tmp = path.with_suffix(".tmp")
    w = gguf.GGUFWriter(str(tmp), "llama")
    w.add_name("random-weights, Gemma 3 270M shape")
    w.add_context_length(4096)
    w.add_embedding_length(s["n_embd"])
    w.add_block_count(s["n_layer"])
    w.add_feed_forward_length(s["n_ff"])
    w.add_head_count(s["n_head"])
    w.add_head_count_kv(s["n_head_kv"])
    w.add_key_length(s["head_dim"])
    w.add_value_length(s["head_dim"])
    w.add_rope_dimension_count(s["head_dim"])
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_tokenizer_model("llama")
    n_vocab = s["n_vocab"]
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581w{i}" for i in range(n_vocab - len(tokens))]
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * 3 + [0.0] * 256 + [-float(i) for i in range(n_vocab - 259)])
    w.add_token_types([2, 3, 3] + [6] * 256 + [1] * (n_vocab - 259))
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)

    def mat(name: str, rows: int, cols: int) -> None:
        data = (rng.standard_normal((rows, cols), dtype=np.float32) * 0.05)
        w.add_tensor(name, gguf.quants.quantize(data, q8), raw_dtype=q8)

    e, hd, ff = s["n_embd"], s["head_dim"], s["n_ff"]
    mat("token_embd.weight", n_vocab, e)
    w.add_tensor("output_norm.weight", np.ones(e, dtype=np.float32))
    mat("output.weight", n_vocab, e)
    for i in range(s["n_layer"]):
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(e, dtype=np.float32))
        mat(f"blk.{i}.attn_q.weight", s["n_head"] * hd, e)
        mat(f"blk.{i}.attn_k.weight", s["n_head_kv"] * hd, e)
        mat(f"blk.{i}.attn_v.weight", s["n_head_kv"] * hd, e)
        mat(f"blk.{i}.attn_output.weight", e, s["n_head"] * hd)
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(e, dtype=np.float32))
        mat(f"blk.{i}.ffn_gate.weight", ff, e)
        mat(f"blk.{i}.ffn_up.weight", ff, e)
        mat(f"blk.{i}.ffn_down.weight", e, ff)
    return save(w, tmp, path)


def bench_llm(carry: Path, site: Path, model: Path, report: Report, gpu: bool) -> None:
    bench = carry / "bench"
    if gpu:  # llama-bench loads the backends in its folder: the same module as cyllama's
        shutil.copy2(site / "ggml_cuda13_plugin" / "libggml-cuda.so", bench / "libggml-cuda.so")
    args = ["--llama-bench", str(bench / "llama-bench"), "--model", str(model),
            "--threads", str(min(8, os.cpu_count() or 1))]
    args += (["--plugin-site", str(site), "--runs", "3", "--reps", "3"] if gpu else
             ["--runs", "1", "--reps", "1", "-p", "16", "-n", "4"])
    env = env_with(site)
    if gpu:
        # llama-bench's CUDA runtime: the same nvidia-* wheels the plugin preloads
        import_lib = sh([sys.executable, "-c", "import nvidia, pathlib; print(next("
                         "str(p / 'cu13/lib') for p in map(pathlib.Path, nvidia.__path__) if "
                         "(p / 'cu13/lib').is_dir()))"], env=env)
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, (import_lib.stdout.strip(),
                                                               env.get("LD_LIBRARY_PATH"))))
    r = sh([sys.executable, str(ROOT / "tools/bench/llm_bench.py"), *args], env=env,
           timeout=max(60.0, report.left() - 60))
    text = r.stdout.strip() or r.stderr[-2000:]
    label = ("pp512/tg128, every layer on the GPU" if gpu else
             "pp16/tg4 on the CPU, one run: a smoke run of both tools, not a measurement")
    report.stage("cyllama vs llama-bench", {"rc": r.returncode, "output": text},
                 f"{label}, model {model.name}:\n```\n{text}\n```")


WHISPER_SD = """
import json, sys, time
sys.path.insert(0, {fixtures!r})
import numpy as np
import cysd, cywhisper
from tiny_sd import tiny_sd
from tiny_whisper import tiny_whisper
out = {{}}
audio = (np.sin(np.arange(16000 * 10) * 2 * np.pi * 440 / 16000) * 0.3).astype(np.float32)
for name, gpu in (("cpu", False), ("gpu", True)):
    w = cywhisper.Whisper(str(tiny_whisper()), use_gpu=gpu)
    w.transcribe(audio, fallback=False)
    t = time.perf_counter()
    for _ in range(3):
        w.transcribe(audio, fallback=False)
    out["whisper " + name] = {{"device": w.device, "s": (time.perf_counter() - t) / 3}}
    model, taesd = tiny_sd()
    sd = cysd.StableDiffusion(str(model), taesd=str(taesd), use_gpu=gpu)
    sd.txt2img("a lighthouse", width=256, height=256, steps=2, seed=1)
    t = time.perf_counter()
    sd.txt2img("a lighthouse", width=256, height=256, steps=4, seed=1)
    out["sd " + name] = {{"device": sd.device, "s": time.perf_counter() - t}}
    del w, sd
print(json.dumps(out))
"""


def whisper_sd(site: Path, report: Report) -> None:
    code = WHISPER_SD.format(fixtures=str(ROOT / "tools" / "fixtures"))
    r = sh([sys.executable, "-c", code], env=env_with(site), timeout=max(60.0, report.left()))
    if r.returncode != 0:
        report.stage("cywhisper and cysd, GPU vs CPU", {"error": r.stderr[-2000:]},
                     f"failed:\n```\n{r.stderr[-1500:]}\n```")
        return
    rows = json.loads(r.stdout.splitlines()[-1])
    lines = [f"- {k}: {v['device']}, {v['s']:.3f} s" for k, v in rows.items()]
    for lib in ("whisper", "sd"):
        cpu, gpu = rows[f"{lib} cpu"]["s"], rows[f"{lib} gpu"]["s"]
        lines.append(f"- {lib}: GPU {cpu / gpu:.2f}x the CPU's speed (tiny fixture model: "
                     "launch-bound, not a model's real speed-up)")
    report.stage("cywhisper and cysd, GPU vs CPU", rows, "\n".join(lines))


def run(carry: Path, out: Path) -> int:
    report = Report(out)
    work = Path(os.environ.get("GPU_CHECK_WORK", "/tmp/gpu-check"))
    site = work / "site"
    fact = facts(report)
    gpu = bool(fact["gpu"])
    install(carry, site, report)
    sys.path.insert(0, str(site))  # gguf, for the benchmark model
    probes = probe(report, work / "probe", gpu)
    built = build_plugin(carry, site, work, report, gpu, probes)
    model = gemma_shaped(work / "gemma3-270m-shape-q8_0.gguf")
    if not gpu or not built:
        bench_llm(carry, site, model, report, gpu=False)
        nxt = ("the GPU step is next: build the whole sm_90 module (about 3 minutes on the "
               "GPU machine's 16 cores), run the GPU-marked tests of cyllama, cywhisper and cysd "
               "with it, time its first load, benchmark cyllama against llama-bench with the "
               "same module (pp512, tg128, every layer on the GPU) and cywhisper and cysd on the "
               "GPU against the CPU")
        why = "no NVIDIA GPU here" if not gpu else "the plugin did not build"
        report.stage("stopped before the GPU", {"reason": why, "next": nxt}, f"{why}: {nxt}.")
        return 0 if not gpu else 1
    tests(site, report)
    first_load(site, model, report)
    bench_llm(carry, site, model, report, gpu=True)
    whisper_sd(site, report)
    report.stage("done", {"total_s": round(time.monotonic() - report.start, 1)},
                 f"total {time.monotonic() - report.start:.0f} s")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="build what the GPU machine needs into .gpu/")
    p.add_argument("--carry", type=Path, default=CARRY)
    p.add_argument("--python", default=sys.executable, help="a CPython 3.12 with the build tools")
    r = sub.add_parser("run", help="the check itself (stops at the GPU step without one)")
    r.add_argument("--carry", type=Path, default=CARRY)
    r.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.command == "prepare":
        prepare(args.carry, args.python)
        return 0
    return run(args.carry, args.out)


if __name__ == "__main__":
    sys.exit(main())
