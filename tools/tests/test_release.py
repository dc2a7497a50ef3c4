"""The release audits (tools/release/audit.py, what `nox -s wheels` runs) fail when they must.

Small but real wheels are built here: C shared objects compiled with the system compiler,
linked like the family's (the extension needs libggml-base-<fp> by soname, rpath $ORIGIN/lib),
zipped with real metadata. A clean family passes; each breach (an exported symbol outside the
allow-list, an unsuffixed ggml name, a stray file, a bad rpath, a size over budget, mismatched
fingerprints, a pinned plugin built for another fingerprint or missing, a host whose range
excludes the shared runtime being released) makes the command exit 1
and names the problem. The packages installed in this environment (the real builds) pass too.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AUDIT = ROOT / "tools" / "release" / "audit.py"
pytest.importorskip("elftools")
import audit  # noqa: E402 (tools/release: pytest's pythonpath)

FP = "0123456789ab"
OTHER = "ba9876543210"
CC = shutil.which("cc") or shutil.which("gcc") or "cc"
pytestmark = pytest.mark.skipif(shutil.which(CC) is None or sys.platform != "linux",
                                reason="needs a C compiler on Linux")


def compile_so(out: Path, code: str, *link: str, soname: str | None = None) -> Path:
    src = out.with_suffix(".c")
    src.write_text(code)
    args = [CC, "-shared", "-fPIC", "-o", str(out), str(src), *link]
    if soname:
        args.append(f"-Wl,-soname,{soname}")
    subprocess.run(args, check=True)
    return out


def write_wheel(path: Path, name: str, version: str, files: dict[str, bytes],
                requires: tuple[str, ...] = ()) -> Path:
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    meta = ("Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}"
            "Description-Content-Type: text/plain\n\n{}\n")
    reqs = "".join(f"Requires-Dist: {r}\n" for r in requires)
    files = dict(files)
    files[f"{dist_info}/METADATA"] = meta.format(name, version, reqs, f"{name} test").encode()
    files[f"{dist_info}/WHEEL"] = (b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\n"
                                   b"Tag: cp311-cp311-linux_x86_64\n")
    record = []
    for n, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{n},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, data in files.items():
            zf.writestr(n, data)
    return path


def host_wheel(tmp: Path, pkg: str, fp: str = FP, *, core_extra: str = "", base_names: str = "",
               rpath: str = "$ORIGIN/lib", stray: bool = False,
               plugin_pin: str | None = "0.1.0",
               runtime: str | None = "ggml-family>=0.1,<0.2") -> Path:
    d = tmp / f"{pkg}-{fp}-build"
    d.mkdir(parents=True, exist_ok=True)
    base = compile_so(d / f"libggml-base-{fp}.so",
                      f"int ggml_init_{fp}(void) {{ return 1; }}\n{base_names}",
                      soname=f"libggml-base-{fp}.so")
    core = compile_so(d / "_core.cpython-311-x86_64-linux-gnu.so",
                      f"int ggml_init_{fp}(void);\n"
                      f"void *PyInit__core(void) {{ return (void *)(long)ggml_init_{fp}(); }}\n"
                      + core_extra,
                      f"-L{d}", f"-l:libggml-base-{fp}.so", f"-Wl,-rpath,{rpath}")
    files = {f"{pkg}/__init__.py": b"", f"{pkg}/py.typed": b"",
             f"{pkg}/_core.cpython-311-x86_64-linux-gnu.so": core.read_bytes(),
             f"{pkg}/lib/libggml-base-{fp}.so": base.read_bytes()}
    if stray:
        files[f"{pkg}/CMakeFiles/_core.dir/core.c.o"] = b"\x7fELF"
    requires = (f'ggml-cuda13-plugin=={plugin_pin}; extra == "cuda13"',) if plugin_pin else ()
    requires += (runtime,) if runtime else ()
    return write_wheel(tmp / f"{pkg}-0.1.0-cp311-cp311-linux_x86_64.whl", pkg, "0.1.0", files,
                       requires)


def plugin_wheel(tmp: Path, fp: str = FP, version: str = "0.1.0") -> Path:
    d = tmp / f"plugin-{fp}-build"
    d.mkdir(parents=True, exist_ok=True)
    base = compile_so(d / f"libggml-base-{fp}.so", f"int ggml_init_{fp}(void) {{ return 1; }}\n",
                      soname=f"libggml-base-{fp}.so")
    assert base.exists()
    mod = compile_so(d / "libggml-cuda.so",
                     f"int ggml_init_{fp}(void);\n"
                     f"void *ggml_backend_init(void) {{ return (void *)(long)ggml_init_{fp}(); }}\n"
                     "int ggml_backend_score(void) { return 1; }\n",
                     f"-L{d}", f"-l:libggml-base-{fp}.so")
    build = json.dumps({"fingerprint": fp, "ggml_version": "0.25.3"}).encode()
    files = {"ggml_cuda13_plugin/__init__.py": b"", "ggml_cuda13_plugin/_build.json": build,
             "ggml_cuda13_plugin/libggml-cuda.so": mod.read_bytes()}
    return write_wheel(tmp / f"ggml_cuda13_plugin-{version}-py3-none-linux_x86_64.whl",
                       "ggml-cuda13-plugin", version, files)


def run_check(wheels: list[Path], rules: Path | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(AUDIT), *(["--rules", str(rules)] if rules else [])]
    return subprocess.run([*args, "check", *map(str, wheels)], capture_output=True, text=True)


def edited_rules(tmp: Path, old: str, new: str) -> Path:
    """release.toml with one edit (which must apply), as a release engineer would make it."""
    text = audit.RULES.read_text()
    assert text.count(old) == 1, old
    path = tmp / "release.toml"
    path.write_text(text.replace(old, new))
    return path


def test_a_clean_family_passes(tmp_path: Path) -> None:
    wheels = [host_wheel(tmp_path, "cyllama"), host_wheel(tmp_path, "cywhisper", plugin_pin=None),
              plugin_wheel(tmp_path)]
    out = run_check(wheels)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("ok ") == 4  # three wheels and the family check


def test_an_extra_export_fails(tmp_path: Path) -> None:
    out = run_check([host_wheel(tmp_path, "cywhisper", plugin_pin=None,
                                core_extra="int leaked_helper(void) { return 2; }\n")])
    assert out.returncode == 1
    assert "_core.cpython-311-x86_64-linux-gnu.so exports 1 symbols outside its allow-list" \
        in out.stderr and "leaked_helper" in out.stderr


def test_an_unsuffixed_ggml_name_fails(tmp_path: Path) -> None:
    # A libggml-base exporting plain ggml names is one a foreign ggml could interpose on.
    out = run_check([host_wheel(tmp_path, "cywhisper", plugin_pin=None,
                                base_names="int ggml_free(void) { return 0; }\n")])
    assert out.returncode == 1
    assert f"libggml-base-{FP}.so exports 1 symbols outside its allow-list" in out.stderr
    assert "ggml_free" in out.stderr


def test_a_stray_file_and_a_bad_rpath_fail(tmp_path: Path) -> None:
    out = run_check([host_wheel(tmp_path, "cywhisper", plugin_pin=None, stray=True,
                                rpath="/home/builder/llama.cpp/build/bin")])
    assert out.returncode == 1
    assert "stray file cywhisper/CMakeFiles/_core.dir/core.c.o" in out.stderr
    assert "has rpath '/home/builder/llama.cpp/build/bin', allowed: ['$ORIGIN/lib']" in out.stderr


def test_a_budget_breach_fails(tmp_path: Path) -> None:
    wheel = host_wheel(tmp_path, "cywhisper", plugin_pin=None)
    assert run_check([wheel]).returncode == 0
    rules = edited_rules(tmp_path, '[packages.cywhisper]\nkind = "host"\nbudget_mb = 9',
                         '[packages.cywhisper]\nkind = "host"\nbudget_mb = 0.001')
    out = run_check([wheel], rules)
    assert out.returncode == 1
    assert "is over its budget of 0.001 MB (release.toml)" in out.stderr


def test_an_allow_list_change_is_enforced(tmp_path: Path) -> None:
    wheel = plugin_wheel(tmp_path)
    rules = edited_rules(tmp_path, 'match = "ggml_cuda13_plugin/libggml-cuda.so"\n'
                         'exports = ["ggml_backend_init", "ggml_backend_score"]',
                         'match = "ggml_cuda13_plugin/libggml-cuda.so"\n'
                         'exports = ["ggml_backend_init"]')
    out = run_check([wheel], rules)
    assert out.returncode == 1 and "ggml_backend_score" in out.stderr


def test_different_host_fingerprints_fail(tmp_path: Path) -> None:
    out = run_check([host_wheel(tmp_path, "cyllama", plugin_pin=None),
                     host_wheel(tmp_path, "cywhisper", OTHER, plugin_pin=None)])
    assert out.returncode == 1
    assert (f"family check: the host wheels were built on different ggml builds (fingerprints "
            f"{FP}, {OTHER})") in out.stderr


def test_a_plugin_for_another_fingerprint_fails(tmp_path: Path) -> None:
    out = run_check([host_wheel(tmp_path, "cyllama"), plugin_wheel(tmp_path, OTHER)])
    assert out.returncode == 1
    assert (f"cyllama-0.1.0-cp311-cp311-linux_x86_64.whl [cuda13] pins ggml-cuda13-plugin==0.1.0, "
            f"built for ggml fingerprint {OTHER}, but cyllama is built on {FP}") in out.stderr


def test_a_pinned_plugin_that_is_missing_fails(tmp_path: Path) -> None:
    out = run_check([host_wheel(tmp_path, "cyllama", plugin_pin="0.2.0"), plugin_wheel(tmp_path)])
    assert out.returncode == 1
    assert "pins ggml-cuda13-plugin==0.2.0, which is not among the wheels being released" \
        in out.stderr


def data_wheel(tmp: Path, version: str = "0.1.0", extra: dict[str, bytes] | None = None) -> Path:
    files = {"cysd_tokenizers/__init__.py": b"", "cysd_tokenizers/tokenizers/qwen2_merges.xz":
             b"\xfd7zXZ\x00", **(extra or {})}
    return write_wheel(tmp / f"cysd_tokenizers-{version}-py3-none-any.whl", "cysd-tokenizers",
                       version, files)


def test_a_data_package_and_its_pin(tmp_path: Path) -> None:
    """cysd[tokenizers] pins the data wheel: present, the family passes (no fingerprint needed);
    missing, or the data wheel carrying a shared object, it fails."""
    host = host_wheel(tmp_path, "cysd", plugin_pin=None)
    pin = ('cysd-tokenizers==0.1.0; extra == "tokenizers"',)
    with zipfile.ZipFile(host) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if ".dist-info/" not in n}
    host = write_wheel(host, "cysd", "0.1.0", files, pin)
    out = run_check([host, data_wheel(tmp_path)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   cysd_tokenizers-0.1.0-py3-none-any.whl" in out.stdout
    out = run_check([host, data_wheel(tmp_path, "0.2.0")])
    assert out.returncode == 1
    assert "[tokenizers] pins cysd-tokenizers==0.1.0, which is not among the wheels being " \
        "released" in out.stderr
    so = compile_so(tmp_path / "x.so", "int x(void) { return 0; }\n").read_bytes()
    out = run_check([host, data_wheel(tmp_path, extra={"cysd_tokenizers/x.so": so})])
    assert out.returncode == 1
    assert "a data package with shared objects: ['cysd_tokenizers/x.so']" in out.stderr


def runtime_wheel(tmp: Path, version: str = "0.1.0", extra: dict[str, bytes] | None = None
                  ) -> Path:
    files = {"ggml_family/__init__.py": b"", "ggml_family/py.typed": b"", **(extra or {})}
    return write_wheel(tmp / f"ggml_family-{version}-py3-none-any.whl", "ggml-family", version,
                       files)


def test_the_shared_runtime_and_the_ranges_that_require_it(tmp_path: Path) -> None:
    """ggml-family (kind library) is released with the hosts: each must require it in a range
    that admits the version being released; a stray file or a shared object in it fails."""
    host = host_wheel(tmp_path, "cywhisper", plugin_pin=None)
    out = run_check([host, runtime_wheel(tmp_path)])
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   ggml_family-0.1.0-py3-none-any.whl" in out.stdout
    out = run_check([host, runtime_wheel(tmp_path, "0.2.0")])
    assert out.returncode == 1
    assert ("cywhisper-0.1.0-cp311-cp311-linux_x86_64.whl requires ggml-family<0.2,>=0.1, "
            "which excludes the ggml-family 0.2.0 being released") in out.stderr
    bare = host_wheel(tmp_path / "bare", "cywhisper", plugin_pin=None, runtime=None)
    out = run_check([bare, runtime_wheel(tmp_path)])
    assert out.returncode == 1 and "does not require ggml-family" in out.stderr
    so = compile_so(tmp_path / "y.so", "int y(void) { return 0; }\n").read_bytes()
    out = run_check([host, runtime_wheel(tmp_path, extra={"ggml_family/y.so": so,
                                                          "ggml_family/notes.txt": b""})])
    assert out.returncode == 1
    assert "a library package with shared objects: ['ggml_family/y.so']" in out.stderr
    assert "stray file ggml_family/notes.txt" in out.stderr


def test_unknown_package_and_unreadable_wheel(tmp_path: Path) -> None:
    other = write_wheel(tmp_path / "other-1.0-py3-none-any.whl", "other", "1.0", {"o.py": b""})
    out = run_check([other])
    assert out.returncode == 1 and "other is not a family package in release.toml" in out.stderr
    broken = tmp_path / "cyllama-0.1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    out = run_check([broken])
    assert out.returncode == 2 and "not a readable wheel" in out.stderr


@pytest.mark.parametrize("pkg", ["cyllama", "cywhisper", "cysd"])
def test_the_installed_build_passes_the_object_audit(pkg: str, tmp_path: Path) -> None:
    """The real builds in this environment, repacked as a wheel: exports, NEEDED and RPATHs."""
    try:
        dist = importlib.metadata.distribution(pkg)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{pkg} is not installed")
    files = {}
    for f in dist.files or []:
        if f.parts[0] == pkg and "__pycache__" not in f.parts:
            files[str(f)] = Path(str(dist.locate_file(f))).read_bytes()
    requires = tuple(dist.requires or ())
    wheel = write_wheel(tmp_path / f"{pkg}-{dist.version}-cp311-cp311-linux_x86_64.whl", pkg,
                        dist.version, files, requires)
    info = audit.read_wheel(wheel)
    rules = audit.load_rules()
    problems = [p for p in audit.audit_wheel(info, rules) if "budget" not in p]
    assert not problems, "\n".join(problems)
    core = next(o for f, o in info.objects.items() if "/_core." in f)
    assert [s for s in core.exports if s.startswith("PyInit_")] == ["PyInit__core"]
    base = next(o for f, o in info.objects.items() if "libggml-base-" in f)
    fp = info.fingerprint
    assert fp and len(base.exports) > 500 and all(fp in s for s in base.exports)
