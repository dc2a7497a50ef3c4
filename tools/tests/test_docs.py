"""Docs match the code: the nox sessions they name exist, their links resolve in the repository.

Every Markdown file of the repository (READMEs, docs/, tools/) and the noxfile's own docstring
are read; every ``nox -s NAME ...`` in a code span or block must name sessions that
``nox --list`` shows, and every relative link (``[text](path)``, or a path to a ``.md`` file in
a code span) must point at a file or folder inside the repository.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP = {".upstream", ".nox", ".git", "build", "dist", ".cache", "node_modules"}
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_NOX = re.compile(r"nox -s((?: [a-z][\w-]*)+)")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_MD_PATH = re.compile(r"^[\w./-]+\.md$")


def markdown_files() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.md")
                  if not SKIP & set(p.relative_to(ROOT).parts[:-1])
                  and not any(part.startswith(".") for part in p.relative_to(ROOT).parts[:-1]))


def sessions() -> set[str]:
    pytest.importorskip("nox")
    out = subprocess.run([sys.executable, "-m", "nox", "--list", "-f", str(ROOT / "noxfile.py")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    names = {m.group(1) for m in re.finditer(r"^[*-] (\S+) ->", out.stdout, re.M)}
    assert {"tests", "lint", "wheels"} <= names, out.stdout
    return names


def named_sessions(text: str) -> list[str]:
    """The session names of every ``nox -s a b c`` inside code spans and blocks of ``text``."""
    found = []
    for code in _CODE.findall(text):
        for m in _NOX.finditer(code):
            found += m.group(1).split()
    return found


def test_the_docs_are_found() -> None:
    files = {str(p.relative_to(ROOT)) for p in markdown_files()}
    assert {"README.md", "docs/design.md", "docs/plugins.md",
            "packages/ggml-family/README.md"} <= files


def test_every_nox_session_named_exists() -> None:
    known = sessions()
    noxfile_doc = (ROOT / "noxfile.py").read_text().split('"""')[1]
    texts = {p.relative_to(ROOT): p.read_text() for p in markdown_files()}
    texts[Path("noxfile.py")] = f"```{noxfile_doc}```"
    missing = [(str(path), name) for path, text in texts.items()
               for name in named_sessions(text) if name not in known]
    assert not missing, f"sessions named in docs but not in `nox --list` ({sorted(known)})"
    assert "tests" in named_sessions(texts[Path("README.md")])


def test_every_relative_link_resolves_inside_the_repository() -> None:
    broken = []
    for path in markdown_files():
        text = path.read_text()
        targets = [t for t in _LINK.findall(text) if "://" not in t and not t.startswith("#")]
        targets += [c.strip("`") for c in _CODE.findall(text)
                    if _MD_PATH.match(c.strip("`")) and "/" in c]
        for target in targets:
            target = target.split("#")[0]
            candidates = [(path.parent / target).resolve(), (ROOT / target).resolve()]
            if not any(c.exists() and c.is_relative_to(ROOT) for c in candidates):
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken, "links that resolve to nothing in the repository:\n" + "\n".join(broken)


def test_the_checks_catch_what_they_must() -> None:
    """The extractors themselves: a made-up session and a link out of the repository."""
    assert named_sessions("run `nox -s tests lint family` then `nox -s bench -- sd`") == [
        "tests", "lint", "family", "bench"]
    assert named_sessions("prose nox -s plugin is not code") == []
    assert _LINK.findall("see [the design](docs/design.md#hosts) and [x](https://a.b)") == [
        "docs/design.md#hosts", "https://a.b"]
