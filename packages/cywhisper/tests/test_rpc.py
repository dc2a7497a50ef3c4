"""Whisper on an RPC server's device (loopback): the same transcript as on this CPU, the device
it ran on, the typed errors for a server that cannot be reached or dies mid-transcription."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from cli import run_cli  # tools/fixtures (conftest)
from conftest import tone, write_wav
from cywhisper import BackendError, ComputeError, Whisper
from rpc_server import RpcServer, free_port  # tools/fixtures (conftest)

FAST = {"fallback": False, "language": "en"}


def test_the_same_transcript_on_a_server(tiny_model: Path, tmp_path: Path) -> None:
    audio = tone(3.0)
    local = Whisper(tiny_model, n_threads=1)
    assert local.device == "CPU" and not local.use_gpu
    want = local.transcribe(audio, **FAST)
    server = RpcServer()
    try:
        remote = Whisper(tiny_model, n_threads=1, rpc=server.endpoint)
        assert remote.device.startswith("RPC") and remote.use_gpu
        got = remote.transcribe(audio, **FAST)
        # whisper.cpp runs a GPU-type device (an RPC server's is one) with other graphs than
        # the CPU alone: the same tokens and times, probabilities that differ in the 3rd decimal
        assert got.text == want.text
        for a, b in zip(got.segments, want.segments, strict=True):
            assert (a.start, a.end, [t.id for t in a.tokens]) == \
                (b.start, b.end, [t.id for t in b.tokens])
            assert [t.probability for t in a.tokens] == \
                pytest.approx([t.probability for t in b.tokens], abs=0.01)
        # a server's device is not this machine's GPU: the default stays on this CPU
        assert Whisper(tiny_model, n_threads=1).device == "CPU"
        del remote  # its connection: a server serves one client at a time
        wav = write_wav(tmp_path / "tone.wav", audio)
        args = ("transcribe", str(wav), "-m", str(tiny_model), "-l", "en", "-t", "1")
        local_cli = run_cli("cywhisper", *args)
        remote_cli = run_cli("cywhisper", *args, "--rpc", server.endpoint)
        assert remote_cli.returncode == 0, remote_cli.stderr
        assert remote_cli.stdout == local_cli.stdout and remote_cli.stdout.strip()
    finally:
        code, out, err = server.stop()
    assert code == 0 and "Accepted client connection" in out, (code, out, err)


def test_a_server_that_dies_mid_transcription(tiny_model: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    server = RpcServer()
    try:
        whisper = Whisper(tiny_model, n_threads=1, rpc=server.endpoint)
        whisper.transcribe(tone(1.0), **FAST)
        segments = whisper.transcribe_iter(tone(600.0), **FAST)  # 20 windows
        next(segments)
        server.proc.kill()
        server.proc.wait(10)
        start = time.monotonic()
        with pytest.raises(ComputeError, match=f"the RPC server at {server.endpoint} crashed"):
            for _ in segments:
                pass
        assert time.monotonic() - start < 5
        # Freeing the model waits for the RPC client's thread, which logs the broken connection:
        # its line must not wait for the GIL (a deadlock), and reaches logging soon after.
        del whisper, segments
        deadline = time.monotonic() + 5
        while not any(r.name == "cywhisper.ggml" and re.match(r"(send|recv) failed", r.getMessage())
                      for r in caplog.records):
            assert time.monotonic() < deadline, caplog.records
            time.sleep(0.05)
    finally:
        server.stop()


def test_an_unreachable_server_and_contradictions(tiny_model: Path) -> None:
    port = free_port()
    with pytest.raises(BackendError, match=f"cannot connect to the RPC server at 127.0.0.1:{port}"):
        Whisper(tiny_model, rpc=f"127.0.0.1:{port}")
    with pytest.raises(ValueError, match="use_gpu=False asks for this machine's CPU"):
        Whisper(tiny_model, rpc=f"127.0.0.1:{port}", use_gpu=False)
    with pytest.raises(ValueError, match="an RPC endpoint is 'host:port'"):
        Whisper(tiny_model, rpc="nowhere")
