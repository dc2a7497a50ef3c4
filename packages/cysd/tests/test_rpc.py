"""Stable Diffusion and the upscaler on an RPC server's device (loopback): the same pixels as
on this CPU, and the typed error for a server that dies mid-generation."""

from __future__ import annotations

import time
from pathlib import Path

import cysd
import numpy as np
import pytest
from cli import run_cli  # tools/fixtures (conftest)
from PIL import Image
from rpc_server import RpcServer  # tools/fixtures (conftest)

SMALL = {"width": 64, "height": 64, "steps": 2, "seed": 7, "as_pil": False}


def test_the_same_pixels_on_a_server(tiny_files: tuple[Path, Path], esrgan: Path,
                                     tmp_path: Path) -> None:
    model, taesd = tiny_files
    local = cysd.StableDiffusion(model, taesd=taesd, n_threads=1)
    assert local.device == "CPU"
    (want,) = local.txt2img("a red fox", **SMALL)
    upscaled = cysd.Upscaler(esrgan, n_threads=1)(want, as_pil=False)
    server = RpcServer()
    try:
        remote = cysd.StableDiffusion(model, taesd=taesd, n_threads=1, rpc=server.endpoint)
        assert remote.device.startswith("RPC") and "RPC" in repr(remote)
        (got,) = remote.txt2img("a red fox", **SMALL)
        assert got.shape == (64, 64, 3) and np.array_equal(got, want)
        up = cysd.Upscaler(esrgan, n_threads=1, rpc=server.endpoint)
        assert up.device == remote.device
        assert np.array_equal(up(want, as_pil=False), upscaled)
        # the command line: the same PNG through the server (once this process's client has
        # left: a server serves one client at a time)
        del remote, up
        args = ("txt2img", "a red fox", "-m", str(model), "--taesd", str(taesd), "--steps", "2",
                "--seed", "7", "-W", "64", "-H", "64", "-t", "1", "-q")
        for name, extra in (("local.png", ()), ("remote.png", ("--rpc", server.endpoint))):
            out = run_cli("cysd", *args, "-o", str(tmp_path / name), *extra)
            assert out.returncode == 0, out.stderr
        with Image.open(tmp_path / "local.png") as a, Image.open(tmp_path / "remote.png") as b:
            assert np.array_equal(np.asarray(a), np.asarray(b))
    finally:
        code, out, err = server.stop()
    assert code == 0 and "Accepted client connection" in out, (code, out, err)


def test_a_server_that_dies_mid_generation(tiny_files: tuple[Path, Path]) -> None:
    model, taesd = tiny_files
    server = RpcServer()
    try:
        sd = cysd.StableDiffusion(model, taesd=taesd, n_threads=1, rpc=server.endpoint)
        steps: list[float] = []

        def progress(step: int, total: int, seconds: float) -> None:
            steps.append(time.monotonic())
            if step == 2:
                server.proc.kill()
                server.proc.wait(10)

        with pytest.raises(cysd.ComputeError, match=f"the RPC server at {server.endpoint} "
                                                    "crashed"):
            sd.txt2img("x", **{**SMALL, "steps": 200}, progress=progress)
        assert len(steps) < 10 and time.monotonic() - steps[-1] < 5
    finally:
        server.stop()


def test_use_gpu_false_contradicts_rpc(tiny_files: tuple[Path, Path]) -> None:
    model, taesd = tiny_files
    with pytest.raises(ValueError, match="use_gpu=False asks for this machine's CPU"):
        cysd.StableDiffusion(model, taesd=taesd, rpc="127.0.0.1:1", use_gpu=False)
