"""ggml's RPC backend, on loopback: rpc-server processes started here, the tiny model split over
this CPU and two servers, a server that dies mid-generation, a protocol mismatch, and a
server fed malformed messages."""

from __future__ import annotations

import contextlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cyllama import LLM, BackendError, ComputeError
from rpc_server import RpcServer, free_port  # tools/fixtures (conftest)

PROMPT = "the capital of France is"
HELLO = 14  # RPC_CMD_HELLO: the one command number the protocol promises never to change
CAPS = 24  # RPC_CONN_CAPS_SIZE


@pytest.fixture(scope="module")
def servers() -> Iterator[list[RpcServer]]:
    started = [RpcServer(), RpcServer()]
    yield started
    for server in started:
        code, out, err = server.stop()
        assert code == 0 and "stopped" in out, (code, out, err)


@pytest.fixture(scope="module")
def four_layers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with four layers: one for this CPU and some for each server."""
    from tiny_llama import CONFIG, write  # tools/fixtures (conftest)
    return write(tmp_path_factory.mktemp("rpc") / "tiny-4-layers.gguf",
                 {**CONFIG, "n_layer": 4})


def test_split_over_this_cpu_and_two_servers(four_layers: Path,
                                             servers: list[RpcServer]) -> None:
    local = LLM(four_layers, n_ctx=256, n_threads=1).generate(PROMPT, max_tokens=24)
    endpoints = [s.endpoint for s in servers]
    # n_gpu_layers counts the output layer: 4 = layers 1-3 and the output; layer 0 stays here
    with LLM(four_layers, n_ctx=256, n_threads=1, rpc=endpoints, n_gpu_layers=4) as llm:
        assert list(llm.rpc) == endpoints and all(len(d) == 1 for d in llm.rpc.values())
        remote = [names[0] for names in llm.rpc.values()]
        devices = llm.layer_devices
        print(devices)
        assert devices["CPU"] == 1
        assert set(devices) == {"CPU", *remote} and sum(devices[d] for d in remote) == 4
        split = llm.generate(PROMPT, max_tokens=24)
    assert split.tokens == local.tokens and split.text == local.text


def test_the_command_line(four_layers: Path, servers: list[RpcServer]) -> None:
    from cli import run_cli  # tools/fixtures (conftest)
    rpc = ",".join(s.endpoint for s in servers)
    info = run_cli("cyllama", "info", "--json", "--model", str(four_layers), "--rpc", rpc,
                   "--n-gpu-layers", "4", timeout=120)
    assert info.returncode == 0, info.stderr
    layers = json.loads(info.stdout)["model"]["layers"]
    assert set(layers) == {"CPU", "RPC0", "RPC1"} and layers["CPU"] == 1, layers
    assert layers["RPC0"] + layers["RPC1"] == 4, layers
    args = ("generate", str(four_layers), PROMPT, "-n", "8", "-t", "1")
    local = run_cli("cyllama", *args, timeout=120)
    remote = run_cli("cyllama", *args, "--rpc", rpc, timeout=120)
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout and len(remote.stdout) > len(PROMPT)


def test_every_layer_remote(four_layers: Path, servers: list[RpcServer]) -> None:
    local = LLM(four_layers, n_ctx=256, n_threads=1).generate(PROMPT, max_tokens=12)
    with LLM(four_layers, n_ctx=256, n_threads=1, rpc=[servers[0].endpoint]) as llm:
        assert set(llm.layer_devices) == set(llm.rpc[servers[0].endpoint])
        assert llm.generate(PROMPT, max_tokens=12).tokens == local.tokens


def test_an_unreachable_server(tiny_model: Path) -> None:
    port = free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.raises(BackendError, match=f"cannot connect to the RPC server at 127.0.0.1:{port}"):
        LLM(tiny_model, rpc=[f"127.0.0.1:{port}"])
    assert time.monotonic() - start < 10


@pytest.mark.parametrize("endpoint", ["localhost", "127.0.0.1:", ":50052", "h:0", "h:99999"])
def test_a_malformed_endpoint(tiny_model: Path, endpoint: str) -> None:
    with pytest.raises(ValueError, match="an RPC endpoint is 'host:port'"):
        LLM(tiny_model, rpc=[endpoint])


def test_rpc_must_be_a_list(tiny_model: Path) -> None:
    with pytest.raises(TypeError, match="rpc must be a list"):
        LLM(tiny_model, rpc="127.0.0.1:50052")


def test_a_busy_server_is_named(four_layers: Path) -> None:
    """A server serves one client at a time; another process's client waits for the handshake
    10 s, then raises, instead of hanging until the first client leaves."""
    server = RpcServer()
    try:
        with LLM(four_layers, n_ctx=256, n_threads=1, rpc=[server.endpoint]):
            start = time.monotonic()
            second = subprocess.run(
                [sys.executable, "-c", "import sys, cyllama\ntry:\n    cyllama.LLM(sys.argv[1], "
                 "rpc=[sys.argv[2]])\nexcept cyllama.BackendError as e:\n    sys.exit(str(e))",
                 str(four_layers), server.endpoint], capture_output=True, text=True, timeout=60)
            waited = time.monotonic() - start
        assert second.returncode == 1, second.stderr
        assert f"the RPC server at {server.endpoint} accepted the connection but did not " \
               "answer within 10 s: it serves one client at a time" in second.stderr
        assert 10 <= waited < 25
    finally:
        server.stop()


def test_another_protocol_version_is_refused(tiny_model: Path) -> None:
    """A server that answers the handshake with protocol 99.0.0."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            cmd, size = struct.unpack("<BQ", conn.recv(9, socket.MSG_WAITALL))
            assert cmd == HELLO
            conn.recv(size, socket.MSG_WAITALL)
            rsp = bytes([99, 0, 0, 0]) + bytes(CAPS)
            conn.sendall(struct.pack("<Q", len(rsp)) + rsp)
            time.sleep(0.5)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        with pytest.raises(BackendError, match=r"speaks protocol 99\.0\.0, this client 7\."):
            LLM(tiny_model, rpc=[f"127.0.0.1:{port}"])
    finally:
        thread.join(5)
        listener.close()


def test_a_server_that_dies_mid_generation(four_layers: Path) -> None:
    server = RpcServer()
    try:
        llm = LLM(four_layers, n_ctx=1024, n_threads=1, rpc=[server.endpoint])
        stream = llm.stream(PROMPT, max_tokens=1000)
        next(stream)
        server.proc.kill()
        server.proc.wait(10)
        start = time.monotonic()
        with pytest.raises(ComputeError, match=f"the RPC server at {server.endpoint} crashed, "
                                               "went away or returned a malformed response"):
            for _ in stream:
                pass
        assert time.monotonic() - start < 5
    finally:
        server.stop()


def test_malformed_messages_leave_the_server_alive(four_layers: Path) -> None:
    """Seeded garbage against a server: random commands, sizes and payloads, cut short; a
    handshake followed by nonsense. The server must live on (or, under the sanitizer build, a
    memory error would end it) and still serve a real client afterwards."""
    server = RpcServer()
    rng = random.Random(20261130)
    try:
        for i in range(200):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
                s.settimeout(0.5)
                if i % 2:  # a proper handshake first: the commands behind it get parsed
                    s.sendall(struct.pack("<BQ", HELLO, CAPS) + bytes(CAPS))
                    with contextlib.suppress(TimeoutError):
                        s.recv(8 + 4 + CAPS, socket.MSG_WAITALL)
                cmd = rng.randrange(32)
                claimed = rng.choice([0, 1, 8, 64, 4096, 2**31, 2**63 - 1])
                payload = rng.randbytes(rng.choice([0, 1, 7, 16, 100, 600]))
                try:
                    s.sendall(struct.pack("<BQ", cmd, claimed) + payload)
                    s.recv(64)
                except (TimeoutError, ConnectionError):
                    pass
            assert server.alive(), f"rpc-server died on message {i} (exit {server.proc.poll()})"
        local = LLM(four_layers, n_ctx=256, n_threads=1).generate(PROMPT, max_tokens=8)
        with LLM(four_layers, n_ctx=256, n_threads=1, rpc=[server.endpoint]) as llm:
            assert llm.generate(PROMPT, max_tokens=8).tokens == local.tokens
    finally:
        code, _, err = server.stop()
    assert code == 0, (code, err[-3000:])


def test_the_server_warns_off_loopback_and_refuses_unknown_devices() -> None:
    server = RpcServer("--host", "0.0.0.0")
    code, out, err = server.stop()
    assert code == 0 and "stopped" in out
    assert "WARNING: the RPC server listens on 0.0.0.0" in err
    assert "no authentication" in err
    out = subprocess.run([sys.executable, "-m", "ggml_family", "rpc-server", "--port",
                          str(free_port()), "--device", "NoSuchGPU0"],
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 1
    assert "no device NoSuchGPU0 here; the devices are CPU" in out.stderr


class CountingProxy:
    """A loopback TCP relay in front of a server that counts the bytes clients send it."""

    def __init__(self, port: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.target = port
        self.sent = 0
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, counted: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(1 << 20):
                if counted:
                    self.sent += len(data)
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop listening and cut the connections (ggml's client keeps one per endpoint)."""
        self.listener.close()
        for s in self.sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def test_the_tensor_cache_spares_a_reload(tmp_path: Path) -> None:
    """Weights over 10 MB go through the server's cache (``--cache DIR``): the first load sends
    them and the server keeps them, the next load sends only their hashes."""
    from tiny_llama import CONFIG, write  # tools/fixtures (conftest)
    # one layer whose three FFN matrices are 64 x 41984 float32: 10.25 MiB each
    model = write(tmp_path / "tiny-wide.gguf", {**CONFIG, "n_layer": 1, "n_ff": 41 * 1024})
    big = 64 * 41 * 1024 * 4
    cache = tmp_path / "cache" / "rpc"  # created by the server
    local = LLM(model, n_ctx=256, n_threads=1).generate(PROMPT, max_tokens=8)
    server = RpcServer("--cache", str(cache))
    proxy = CountingProxy(server.port)
    try:
        with LLM(model, n_ctx=256, n_threads=1, rpc=[proxy.endpoint]) as llm:
            assert llm.generate(PROMPT, max_tokens=8).tokens == local.tokens
        first = proxy.sent
        files = sorted(cache.iterdir())
        assert [f.stat().st_size for f in files] == [big] * 3, files
        assert all(len(f.name) == 16 for f in files)  # the weights' 64-bit hashes, in hex
        proxy.sent = 0
        with LLM(model, n_ctx=256, n_threads=1, rpc=[proxy.endpoint]) as llm:
            assert llm.generate(PROMPT, max_tokens=8).tokens == local.tokens
        second = proxy.sent
        print(f"sent {first / 2**20:.1f} MiB on the first load, {second / 2**20:.2f} MiB on the "
              "second")
        assert first > 3 * big and second < big / 10, (first, second)
        assert sorted(cache.iterdir()) == files
    finally:
        proxy.close()
        code, _, err = server.stop()
    assert code == 0, err[-3000:]
