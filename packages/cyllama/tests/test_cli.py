"""``python -m cyllama`` and the ``cyllama`` console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli import check_info, run_cli
from cyllama import _core


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("cyllama", *args, timeout=120)


@pytest.mark.smoke
def test_info_shows_fingerprint_and_cpu_module() -> None:
    assert check_info("cyllama", _core).startswith("cyllama 0.1.0 (llama.cpp)\n")


def test_info_json() -> None:
    import json

    out = run("info", "--json")
    data = json.loads(out.stdout)
    assert data["fingerprint"] == _core.fingerprint()
    assert [b["name"] for b in data["backends"]].count("CPU") == 1


def test_generate(tiny_model: Path) -> None:
    out = run("generate", str(tiny_model), "The capital of France is", "-n", "5", "-t", "1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("The capital of France is")
    assert len(out.stdout.strip()) > len("The capital of France is")


def test_generate_missing_model(tmp_path: Path) -> None:
    out = run("generate", str(tmp_path / "x.gguf"), "hi")
    assert out.returncode != 0
    assert "FileNotFoundError" in out.stderr and "model file not found" in out.stderr


def run_input(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cyllama", *args], capture_output=True,
                          text=True, timeout=120, input=stdin)


def test_generate_sampled_and_constrained(tiny_model: Path) -> None:
    import json

    args = ("generate", str(tiny_model), "the", "-n", "80", "-t", "1", "--no-echo")
    a = run(*args, "--temp", "1.0", "--seed", "4")
    b = run(*args, "--temp", "1.0", "--seed", "4")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    schema = '{"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}'
    out = run(*args, "--json-schema", schema)
    assert out.returncode == 0, out.stderr
    assert isinstance(json.loads(out.stdout)["n"], int)


def test_chat_reads_turns_from_stdin(tiny_model: Path) -> None:
    out = run_input("Hello\n/reset\nAgain\n/exit\nnot read\n", "chat", str(tiny_model), "-n", "4",
                    "-t", "1", "--template", "chatml")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("\n") == 2  # one reply line per user turn


def test_embed_prints_one_vector_per_text(tiny_model: Path) -> None:
    import json

    out = run("embed", str(tiny_model), "the city", "the river", "-t", "1")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 2 and len(rows[0]) == 64  # the tiny model's n_embd
    assert abs(sum(x * x for x in rows[0]) - 1.0) < 1e-3


def test_bench_json(tiny_model: Path) -> None:
    import json

    out = run("bench", str(tiny_model), "-p", "64", "-n", "16", "-r", "2", "-t", "1", "--json")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["n_prompt"] == 64 and res["tg_decodes"] == 16
    assert res["pp_tokens_per_second"] > 0 and res["tg_tokens_per_second"] > 0
    assert 0 < res["tg_outside_decode_us"] < 1e5


def test_cli_errors_are_one_line(tiny_model: Path) -> None:
    out = run("generate", str(tiny_model), "the", "--temp", "-1")
    assert out.returncode == 1
    assert out.stderr.strip() == ("cyllama generate: ValueError: temperature must be >= 0, "
                                  "got -1.0")
