"""What the server tests (test_server.py, test_server_media.py) share: ``cyllama serve`` in a
subprocess on a free port, with the official ``openai`` client and an httpx client on it, and
the check of an OpenAI-shaped error."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai

#: The API key every served test server requires.
KEY = "test-key-123"
#: The context window of each sequence (``-c``) unless a test gives another.
N_CTX = 1024


class Served:
    """A running ``cyllama serve``: its process, base URL, (language) model name and clients
    that send the key."""

    def __init__(self, proc: subprocess.Popen[str], url: str, name: str) -> None:
        self.proc, self.url, self.name = proc, url, name
        self.client = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0,
                                    timeout=60)
        self.http = httpx.Client(base_url=url, timeout=60,
                                 headers={"Authorization": f"Bearer {KEY}"})

    def health(self) -> dict[str, Any]:
        return self.http.get("/health").json()  # type: ignore[no-any-return]

    def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI document (``/openapi.json``)."""
        r = self.http.get("/openapi.json")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")


def start_server(model: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """``cyllama serve model *args`` on a free port, once it answers ``/health``: the process
    and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyllama", "serve", str(model), "--port", "0", "-c", str(N_CTX),
         "-t", "2", "--log-level", "warning", *args],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "cyllama server: http://" in line:
            url = line.split()[2].removesuffix("/v1")
            break
        if not line and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
    else:
        raise AssertionError("the server did not start")
    for _ in range(200):
        try:
            if httpx.get(url + "/health").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the server does not answer /health")


@contextlib.contextmanager
def serving(model: Path, *args: str) -> Iterator[Served]:
    """``cyllama serve model *args`` (with the test key) while the block runs."""
    proc, url = start_server(model, "--api-key", KEY, *args)
    served = Served(proc, url, model.stem)
    try:
        yield served
    finally:
        served.client.close()
        served.http.close()
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()


def error_of(r: httpx.Response, status: int) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error response with this status."""
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err  # type: ignore[no-any-return]


def response_fields(spec: dict[str, Any], method: str, path: str) -> set[str]:
    """The top-level fields of the JSON body that the OpenAPI document ``spec`` declares for a
    200 answer to ``method path`` (of every schema, where the answer is one of several)."""
    schema = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"][
        "schema"]
    fields: set[str] = set()
    for option in schema.get("anyOf", [schema]):
        ref = option["$ref"].removeprefix("#/components/schemas/")
        fields |= set(spec["components"]["schemas"][ref]["properties"])
    return fields
