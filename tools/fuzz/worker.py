"""A fuzz worker: runs the cases of one format whose indices come on stdin, one answer line each
on stdout: ``ok``, ``error <Type>: <message>`` (a typed exception) or ``untyped <Type>: ...``
(any other exception: a bug in our Python layer). A signal or an abort ends the process, which
the driver (fuzz.py) records against the case it was running.

    python tools/fuzz/worker.py FORMAT SEED [random|sweep|sweep-once]

``sweep`` and ``sweep-once`` take the cases of the structure-aware sweep (sweep.py) instead of
the seeded mutations.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "fixtures"))

import formats  # noqa: E402
import sweep  # noqa: E402


def typed_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a bad input may raise: the family's (every host's derive from them), and
    the documented built-ins (ValueError covers ContextOverflowError, AudioError, ImageError)."""
    import ggml_family
    return (ggml_family.GgmlError, ValueError, TypeError, FileNotFoundError)


def action(fmt: str, workdir: Path) -> Callable[[bytes], None]:
    """What a user would do with an input of this format (set up once per worker)."""
    if fmt == "selftest":  # the driver's own test: one case of every outcome
        def outcome(data: bytes) -> None:
            what = data.decode()
            if what == "typed":
                raise ValueError("a typed error")
            if what == "untyped":
                raise KeyError("an untyped error")
            if what == "abort":
                os.abort()
            if what == "hang":
                time.sleep(3600)
        return outcome
    if fmt in ("gguf-sd", "safetensors", "image"):
        return sd_action(fmt, workdir)
    import cyllama

    path = workdir / "case.bin"
    if fmt == "gguf-llama":
        def load_and_generate(data: bytes) -> None:
            path.write_bytes(data)
            with cyllama.LLM(path, n_ctx=64, n_threads=1) as llm:
                llm.generate("the", max_tokens=4)
        return load_and_generate
    llm = cyllama.LLM(formats.tiny_llama_path(), n_ctx=128, n_threads=1)
    if fmt == "gguf-lora":
        def apply_lora(data: bytes) -> None:
            path.write_bytes(data)
            adapter = llm.load_lora(path)
            try:
                llm.generate("the", max_tokens=4)
            finally:
                llm.remove_lora(adapter)
        return apply_lora
    if fmt == "llama-state":
        def restore(data: bytes) -> None:
            path.write_bytes(data)
            llm.load_state_file(path)
            llm.generate("the quick brown fox jumps", max_tokens=4)
        return restore
    if fmt == "gbnf":
        def constrain(data: bytes) -> None:
            llm.generate("the", max_tokens=8, grammar=data.decode())
        return constrain
    if fmt == "json-schema":
        def schema(data: bytes) -> None:  # as JSON text: the library parses it (or fails)
            llm.generate("the", max_tokens=8, json_schema=data.decode())
        return schema
    import numpy as np
    from cywhisper import Whisper
    from tiny_whisper import tiny_whisper

    audio = np.zeros(16000, dtype=np.float32)
    if fmt == "whisper-model":
        def transcribe_with(data: bytes) -> None:
            path.write_bytes(data)
            Whisper(path, n_threads=1).transcribe(audio, language="en", fallback=False)
        return transcribe_with
    if fmt == "wav":
        whisper = Whisper(tiny_whisper(), n_threads=1)
        wav_path = workdir / "case.wav"

        def transcribe(data: bytes) -> None:
            wav_path.write_bytes(data)
            whisper.transcribe(wav_path, language="en", fallback=False)
        return transcribe
    raise SystemExit(f"unknown format {fmt!r}")


def sd_action(fmt: str, workdir: Path) -> Callable[[bytes], None]:
    """stable-diffusion.cpp's model loader (GGUF and safetensors: every checkpoint, VAE, LoRA
    and upscaler goes through it), fed the tiny ESRGAN, and cysd's image files."""
    import numpy as np
    from cysd import Upscaler, _images
    from tiny_sd import tiny_esrgan

    pixels = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    if fmt in ("gguf-sd", "safetensors"):
        path = workdir / f"case.{'gguf' if fmt == 'gguf-sd' else 'safetensors'}"

        def load_and_upscale(data: bytes) -> None:
            path.write_bytes(data)
            Upscaler(path, n_threads=1)(pixels, as_pil=False)
        return load_and_upscale
    upscaler = Upscaler(tiny_esrgan(), n_threads=1)
    image = workdir / "case.img"

    def read_and_upscale(data: bytes) -> None:
        image.write_bytes(data)
        raw = _images.to_raw(image)  # what img2img, inpaint and upscale do with a path
        width, height = raw[0], raw[1]
        if width * height <= 128 * 128:  # what decodes goes on to sd.cpp (small ones: time)
            upscaler(_images.from_raw(raw, as_pil=False), as_pil=False)
    return read_and_upscale


def main() -> int:
    fmt, seed = sys.argv[1], int(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "random"

    def case_bytes(index: int) -> bytes:
        if mode == "random":
            return formats.case_bytes(fmt, seed, index)
        return sweep.case(fmt, index, once=mode == "sweep-once")[0]

    # Answers go to the original stdout; whatever native code prints goes to stderr, so it
    # cannot be taken for an answer.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as d:
        run: Any = action(fmt, Path(d))
        typed = typed_errors()
        for line in sys.stdin:
            data = case_bytes(int(line))
            try:
                run(data)
            except typed as e:
                answer = f"error {type(e).__name__}: {str(e)[:200]}"
            except Exception as e:  # an untyped error: what the fuzzing is looking for
                answer = f"untyped {type(e).__name__}: {str(e)[:200]}"
            else:
                answer = "ok"
            answers.write(answer.replace("\n", " ") + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
