"""tools/upstream.py: verified, patched, idempotent fetches and clear errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import upstream  # tools/: pytest's pythonpath


def make_sdist(path: Path, files: dict[str, str], mtime: int = 0) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"pkg-1.0/{name}")
            info.size = len(data)
            info.mtime = mtime
            tar.addfile(info, io.BytesIO(data))
    return upstream._sha256(path)


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    dest = tmp_path / "upstream"
    (dest / "_sdists").mkdir(parents=True)
    monkeypatch.setattr(upstream, "DEST", dest)
    monkeypatch.setattr(upstream, "PATCHES", tmp_path / "patches")
    monkeypatch.setattr(upstream, "ROOT", tmp_path)
    return tmp_path


def entry(sandbox: Path, sha: str, path: str = "vendor/lib") -> upstream.Entry:
    return upstream.Entry(key="lib", sdist="pkg", version="1.0", filename="pkg-1.0.tar.gz",
                          sha256=sha, path=path)


def write_patch(sandbox: Path, name: str, old: str, new: str) -> Path:
    p = sandbox / "patches" / "lib" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(f"--- a/hello.c\n+++ b/hello.c\n@@ -1 +1 @@\n-{old}\n+{new}\n")
    return p


def test_fetch_verifies_unpacks_patches_and_is_idempotent(sandbox: Path) -> None:
    sha = make_sdist(sandbox / "upstream/_sdists/pkg-1.0.tar.gz",
                     {"vendor/lib/hello.c": "int x = 1;\n", "other/skip.c": "no\n"})
    write_patch(sandbox, "0001-x.patch", "int x = 1;", "int x = 2;")
    e = entry(sandbox, sha)
    tree = upstream.fetch(e)
    assert (tree / "hello.c").read_text() == "int x = 2;\n"
    assert not (tree / "other").exists()
    stamp = json.loads((tree / ".upstream-stamp.json").read_text())
    assert stamp["sha256"] == sha and list(stamp["patches"]) == ["0001-x.patch"]
    mtime = (tree / "hello.c").stat().st_mtime_ns
    assert upstream.fetch(e) == tree  # no-op: nothing re-extracted
    assert (tree / "hello.c").stat().st_mtime_ns == mtime


def test_new_patch_recreates_tree(sandbox: Path) -> None:
    sha = make_sdist(sandbox / "upstream/_sdists/pkg-1.0.tar.gz", {"vendor/lib/hello.c": "a\n"})
    e = entry(sandbox, sha)
    assert (upstream.fetch(e) / "hello.c").read_text() == "a\n"
    write_patch(sandbox, "0001-b.patch", "a", "b")
    assert (upstream.fetch(e) / "hello.c").read_text() == "b\n"


def test_recreated_tree_is_newer_than_earlier_builds(sandbox: Path) -> None:
    # The sdist's files carry old mtimes; a build dir compiled from the previous tree must see
    # the re-created one as newer, or ninja keeps the old objects (a changed patch unbuilt).
    sha = make_sdist(sandbox / "upstream/_sdists/pkg-1.0.tar.gz", {"vendor/lib/hello.c": "a\n"},
                     mtime=946684800)  # 2000-01-01
    e = entry(sandbox, sha)
    before = time.time_ns()
    tree = upstream.fetch(e)
    assert (tree / "hello.c").stat().st_mtime_ns >= before - 10**9
    write_patch(sandbox, "0001-b.patch", "a", "b")
    built = time.time_ns()  # an object compiled from the first tree
    assert (upstream.fetch(e) / "hello.c").stat().st_mtime_ns >= built - 10**9


def test_wrong_hash(sandbox: Path) -> None:
    make_sdist(sandbox / "upstream/_sdists/pkg-1.0.tar.gz", {"vendor/lib/hello.c": "a\n"})
    with pytest.raises(upstream.UpstreamError, match=r"sha256 mismatch for pkg-1\.0\.tar\.gz"):
        upstream.fetch(entry(sandbox, "0" * 64))


def test_patch_that_no_longer_applies(sandbox: Path) -> None:
    sha = make_sdist(sandbox / "upstream/_sdists/pkg-1.0.tar.gz", {"vendor/lib/hello.c": "a\n"})
    write_patch(sandbox, "0001-x.patch", "something else", "b")
    with pytest.raises(upstream.UpstreamError,
                       match=r"patch patches/lib/0001-x\.patch no longer applies to lib"):
        upstream.fetch(entry(sandbox, sha))
    assert not (sandbox / "upstream" / "lib").exists()  # nothing half-patched left behind


def test_missing_path(sandbox: Path) -> None:
    sha = make_sdist(sandbox / "upstream/_sdists/pkg-1.0.tar.gz", {"src/hello.c": "a\n"})
    with pytest.raises(upstream.UpstreamError, match="has no 'vendor/lib'"):
        upstream.fetch(entry(sandbox, sha))


def test_lock_file_is_complete() -> None:
    lock = upstream.load_lock()
    assert set(lock) == {"llama.cpp", "whisper.cpp", "stable-diffusion.cpp"}
    for e in lock.values():
        assert len(e.sha256) == 64 and e.filename.endswith(".tar.gz")


def test_patches_have_a_reason() -> None:
    """Every patch starts with a one-line reason (its first line, before the diff)."""
    for patch in sorted(upstream.PATCHES.glob("*/*.patch")):
        first = patch.read_text().splitlines()[0]
        assert first and not first.startswith(("---", "diff", "+++")), patch


def test_cli_reports_errors_cleanly(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(upstream.ROOT / "tools/upstream.py"), "path",
                          "nope"], capture_output=True, text=True)
    assert out.returncode == 1
    assert "upstream: error: unknown upstream 'nope'" in out.stderr
