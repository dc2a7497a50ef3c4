"""The Whisper class: load a whisper.cpp model; transcribe, stream segments, detect languages."""

from __future__ import annotations

import math
import os
import queue
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ggml_family
import numpy as np
from ggml_family.checks import check_model_file, check_settings, check_threads

from . import _core
from ._audio import SAMPLE_RATE, AudioInput, load_audio
from ._decoding import Decoding
from ._errors import AudioError, ModelLoadError
from ._results import Segment, Token, Transcript, Word

__all__ = ["Whisper"]

_MIN_SECONDS = 0.1  # whisper.cpp refuses shorter input

Progress = Callable[[int], object]


# A whisper.cpp file's header: its eleven int32 fields in order, with the largest value each
# may take (whisper.cpp trusts them all: a count of 2^31 is an allocation of that size); ftype
# (a ggml file type, plus 1000 per quantisation version) is checked by whisper.cpp itself.
_HPARAMS = {"n_vocab": 999_999, "n_audio_ctx": 99_999, "n_audio_state": 99_999,
            "n_audio_head": 99_999, "n_audio_layer": 99_999, "n_text_ctx": 99_999,
            "n_text_state": 99_999, "n_text_head": 99_999, "n_text_layer": 99_999,
            "n_mels": 99_999, "ftype": 0}


def _walk_model(p: Path) -> None:
    """Check a whisper.cpp file's structure up to its last byte (whisper.cpp's loader does not
    notice short reads: a truncated file would load as an "empty model for testing")."""
    size = p.stat().st_size

    def need(n: int, what: str) -> None:
        if f.tell() + n > size:
            raise ModelLoadError(f"model file {p} is truncated ({size} bytes): it ends inside "
                                 f"the {what}")

    with p.open("rb") as f:
        need(48, "header")
        f.seek(4)
        hp = dict(zip(_HPARAMS, struct.unpack("<11i", f.read(44)), strict=True))
        for name, limit in _HPARAMS.items():  # ftype: whisper.cpp's own check (our patch)
            if limit and not 0 < hp[name] <= limit:
                raise ModelLoadError(f"model file {p} has an invalid header: {name} is "
                                     f"{hp[name]}, not 1 to {limit}")
        # (whisper.cpp reshapes by width / heads without checking: an abort in the graph.)
        for part in ("audio", "text"):
            width, heads = hp[f"n_{part}_state"], hp[f"n_{part}_head"]
            if width % heads:
                raise ModelLoadError(f"model file {p} has an invalid header: the {part} width "
                                     f"{width} is not a multiple of its {heads} heads")
        need(8, "mel filters")
        n_mel, n_fft = struct.unpack("<2i", f.read(8))
        if not (0 < n_mel <= 1024 and 0 < n_fft <= 4096):
            raise ModelLoadError(f"model file {p} has invalid mel filters ({n_mel} x {n_fft})")
        need(4 * n_mel * n_fft, "mel filters")
        f.seek(4 * n_mel * n_fft, 1)
        need(4, "vocabulary")
        (n_vocab,) = struct.unpack("<i", f.read(4))
        if not 0 <= n_vocab <= hp["n_vocab"]:
            raise ModelLoadError(f"model file {p} has an invalid vocabulary size {n_vocab}")
        start = f.tell()  # the tokens are walked in memory: 50k seeks cost ~100 ms
        buf = f.read(min(size - start, n_vocab * 260))
        off = walked = 0
        while walked < n_vocab and off + 4 <= len(buf):
            off += 4 + int.from_bytes(buf[off:off + 4], "little")
            walked += 1
        if walked < n_vocab or off > len(buf):
            raise ModelLoadError(f"model file {p} is truncated ({size} bytes) or corrupt: it "
                                 "ends inside the vocabulary")
        f.seek(start + off)
        tensors = 0
        while f.tell() < size:
            need(12, f"header of tensor {tensors}")
            n_dims, name_len, ttype = struct.unpack("<3i", f.read(12))
            if not (1 <= n_dims <= 4 and 0 < name_len < 512 and 0 <= ttype < 64):
                raise ModelLoadError(f"model file {p} is corrupt at byte {f.tell() - 12} "
                                     f"(tensor {tensors})")
            need(4 * n_dims + name_len, f"header of tensor {tensors}")
            dims = struct.unpack(f"<{n_dims}i", f.read(4 * n_dims))
            name = f.read(name_len).decode("utf-8", "replace")
            nbytes = _tensor_bytes(ttype, dims)
            if nbytes is None:
                raise ModelLoadError(f"model file {p}: tensor {name!r} has unknown type {ttype}")
            need(nbytes, f"data of tensor {name!r}")
            f.seek(nbytes, 1)
            tensors += 1
        if tensors == 0:
            raise ModelLoadError(f"model file {p} holds no tensors (truncated after its "
                                 "vocabulary?)")


# ggml type -> (block size, bytes per block) for the types whisper.cpp files use.
_TYPES = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
          8: (32, 34), 10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176),
          14: (256, 210), 30: (1, 2)}


def _tensor_bytes(ttype: int, dims: tuple[int, ...]) -> int | None:
    if ttype not in _TYPES or any(d <= 0 for d in dims):
        return None
    block, size = _TYPES[ttype]
    n = math.prod(dims)
    return n // block * size


def _check_model_file(path: str | os.PathLike[str]) -> Path:
    hints = {b"GGUF": " (a GGUF file: that is a llama.cpp model, not whisper.cpp)"}
    p = check_model_file(path, magic=b"lmgg", kind="whisper.cpp model",
                         error=ModelLoadError, hints=hints)
    _walk_model(p)
    return p


class _Progress:
    """Passes whisper.cpp's progress on as 0..100, increasing, ending at 100 exactly once
    (whisper.cpp's own can pass 100 on audio that is not a whole number of windows)."""

    def __init__(self, callback: Progress | None) -> None:
        self.callback = callback
        self.last = -1

    def __call__(self, percent: int) -> None:
        percent = min(max(int(percent), 0), 99)
        if self.callback is not None and percent > self.last:
            self.last = percent
            self.callback(percent)

    def done(self) -> None:
        if self.callback is not None and self.last < 100:
            self.last = 100
            self.callback(100)


def _gpu_index(host: ggml_family.Host, device: str) -> int:
    """whisper.cpp's number for a device: its place among the registered GPU-type devices (a
    plugin's GPUs and the RPC servers' devices, in the order they registered)."""
    gpus = [d["name"] for b in host.core.backends() for d in b["devices"]
            if d["type"] in ("gpu", "igpu")]
    return gpus.index(device)


class Whisper:
    """A whisper.cpp speech recognition model.

    >>> w = Whisper("ggml-tiny.en.bin")
    >>> t = w.transcribe("speech.wav")
    >>> t.text, t.segments[0].start
    >>> t.write("speech.srt")

    Parameters:
        path: a whisper.cpp model file (``ggml-*.bin``).
        n_threads: CPU threads (default: all cores).
        use_gpu: run on a GPU device registered by a plugin (``pip install 'cywhisper[cuda]'``).
            The default uses one when present; ``True`` without one raises BackendError.
        flash_attn: use flash attention (faster, same results).
        rpc: an RPC server (``"host:port"``, ``python -m ggml_family rpc-server``) whose (first)
            device runs the model instead of this machine's: a GPU in another machine.

    A Whisper is not thread-safe: calls on one instance are serialised (a second call while
    one runs raises RuntimeError).
    """

    def __init__(self, path: str | os.PathLike[str], *, n_threads: int | None = None,
                 use_gpu: bool | None = None, flash_attn: bool = True,
                 rpc: str | None = None) -> None:
        self.n_threads = check_threads("n_threads", n_threads)
        self.path = _check_model_file(path)
        host = ggml_family.host("cywhisper")
        #: The ggml device the model runs on ("CPU", "CUDA0", "RPC0", ...).
        self.device = host.choose_device(use_gpu, rpc)
        self.use_gpu = self.device != "CPU"
        self._core = _core.Whisper(str(self.path), self.use_gpu, flash_attn,
                                   _gpu_index(host, self.device) if self.use_gpu else 0)
        self._lock = threading.Lock()

    # -- facts ------------------------------------------------------------------------------

    @property
    def is_multilingual(self) -> bool:
        """Whether the model knows languages other than English."""
        return bool(self._core.is_multilingual)

    @property
    def model_type(self) -> str:
        """whisper.cpp's size name of the model (tiny, base, ...)."""
        return str(self._core.model_type)

    @staticmethod
    def languages() -> dict[str, str]:
        """Every language code Whisper knows, with its English name."""
        return {_core.lang_str(i): _core.lang_str_full(i) for i in range(_core.lang_max_id() + 1)}

    # -- transcription ----------------------------------------------------------------------

    def _language(self, language: str | None) -> str:
        if language is None:
            return "auto" if self.is_multilingual else "en"
        if not isinstance(language, str):
            raise TypeError(f"language must be a str, not {type(language).__name__}")
        if language == "auto":
            if not self.is_multilingual:
                raise ValueError("language='auto' needs a multilingual model; this one is "
                                 "English-only")
            return language
        code = language.lower()
        lang_id = _core.lang_id(code)
        if lang_id < 0:
            raise ValueError(f"unknown language code {language!r} (see Whisper.languages())")
        code = _core.lang_str(lang_id)
        if code != "en" and not self.is_multilingual:
            raise ValueError(f"language={language!r}: this model is English-only")
        return code

    def _prepare(self, audio: AudioInput, sample_rate: int | None, decoding: Decoding | None,
                 options: dict[str, Any]) -> tuple[np.ndarray, Decoding, Any]:
        """The audio as 16 kHz samples, the decoding settings (``options`` override
        ``decoding``'s fields) and whisper_full's parameters; every check made here, before
        any work."""
        d = check_settings("decoding", decoding, Decoding, options)
        language = self._language(d.language)
        if d.translate and not self.is_multilingual:
            raise ValueError("translate=True needs a multilingual model; this one is English-only")
        pcm = load_audio(audio, sample_rate)
        if len(pcm) < _MIN_SECONDS * SAMPLE_RATE:
            raise AudioError(f"audio is {len(pcm) / SAMPLE_RATE * 1000:.0f} ms long; whisper.cpp "
                             f"needs at least {_MIN_SECONDS * 1000:.0f} ms")
        split = d.max_segment_chars is not None
        params = ggml_family.params(
            _core.FullParams, n_threads=self.n_threads, language=language,
            translate=bool(d.translate), initial_prompt=d.initial_prompt or "",
            beam_size=d.beam_size or 0, temperature=d.temperature, fallback=bool(d.fallback),
            token_timestamps=bool(d.word_timestamps) or split,
            max_len=d.max_segment_chars or 0, split_on_word=split,
            vad_model=str(d.vad) if d.vad is not None else "")
        return pcm, d, params

    def _segment(self, raw: tuple[Any, ...], duration: float, words: bool) -> Segment:
        t0, t1, text, no_speech, _turn, toks = raw
        eot = self._eot

        def clamp(cs: int) -> float:
            return min(max(cs / 100.0, 0.0), duration)

        start, end = clamp(t0), clamp(t1)
        tokens = tuple(
            Token(id=int(i), text=bytes(t).decode("utf-8", "replace"), probability=float(p),
                  start=clamp(a) if words else None, end=clamp(b) if words else None)
            for i, t, p, _lp, a, b in toks if i < eot)
        word_list: tuple[Word, ...] | None = None
        if words:
            out: list[Word] = []
            for tok in tokens:
                assert tok.start is not None and tok.end is not None
                if not out or tok.text.startswith(" ") or not out[-1].text:
                    out.append(Word(tok.text, tok.start, tok.end, tok.probability))
                else:
                    w = out[-1]
                    out[-1] = Word(w.text + tok.text, w.start, max(w.end, tok.end),
                                   min(w.probability, tok.probability))
            word_list = tuple(Word(w.text.strip(), w.start, w.end, w.probability)
                              for w in out if w.text.strip())
        return Segment(start=start, end=max(end, start),
                       text=bytes(text).decode("utf-8", "replace"),
                       tokens=tokens, no_speech_probability=float(no_speech), words=word_list)

    @property
    def _eot(self) -> int:
        return int(self._core.token_eot)

    def _acquire(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this Whisper is busy with another transcription (a segment "
                               "iterator not yet exhausted, or another thread)")

    def transcribe(self, audio: AudioInput, decoding: Decoding | None = None, *,
                   sample_rate: int | None = None, progress: Progress | None = None,
                   **options: Any) -> Transcript:
        """Transcribe (or translate to English) ``audio``.

        Parameters:
            audio: a file path (WAV; other formats with ``cywhisper[audio]``), or a NumPy array
                of samples (float in [-1, 1] or int16; (samples,) or (samples, channels)).
            decoding: how to decode (:class:`Decoding`); default ``Decoding()``.
            sample_rate: the array's sample rate (default 16000; others are resampled).
            progress: called with the percentage done; raising from it cancels (the exception
                propagates).
            options: fields of :class:`Decoding` (``language="de"``, ``beam_size=5`` ...),
                overriding ``decoding``'s.
        """
        pcm, d, params = self._prepare(audio, sample_rate, decoding, options)
        duration = len(pcm) / SAMPLE_RATE
        report = _Progress(progress)
        self._acquire()
        try:
            n = self._core.full(pcm, params, None, report if progress else None)
            report.done()
            segments = tuple(self._segment(self._core.segment(i), duration,
                                           d.word_timestamps) for i in range(n))
            lang = _core.lang_str(self._core.lang_id()) if self.is_multilingual else "en"
        finally:
            self._lock.release()
        return Transcript(language=lang or params.language, segments=segments,
                          duration=duration)

    def transcribe_iter(self, audio: AudioInput, decoding: Decoding | None = None, *,
                        sample_rate: int | None = None, progress: Progress | None = None,
                        **options: Any) -> Iterator[Segment]:
        """Like :meth:`transcribe`, yielding each segment as soon as it is decoded.

        Decoding runs in a worker thread from the first ``next()``; breaking out of the loop
        cancels it. Arguments are checked at the call.
        """
        pcm, d, params = self._prepare(audio, sample_rate, decoding, options)
        return self._iterate(pcm, params, progress, d.word_timestamps)

    def _iterate(self, pcm: np.ndarray, params: Any, progress: Progress | None,
                 words: bool) -> Iterator[Segment]:
        duration = len(pcm) / SAMPLE_RATE
        items: queue.Queue[tuple[str, Any]] = queue.Queue()

        def on_segment(segs: list[tuple[Any, ...]]) -> None:
            for s in segs:
                items.put(("segment", s))

        report = _Progress(progress)

        def work() -> None:
            try:
                self._core.full(pcm, params, on_segment, report if progress else None)
                report.done()
                items.put(("done", None))
            except BaseException as e:  # handed to the consuming thread
                items.put(("error", e))

        worker = threading.Thread(target=work, name="cywhisper-transcribe", daemon=True)
        self._acquire()
        try:
            worker.start()
            while True:
                kind, item = items.get()
                if kind == "segment":
                    yield self._segment(item, duration, words)
                elif kind == "error":
                    raise item
                else:
                    return
        finally:
            self._core.cancel()
            if worker.is_alive():
                worker.join()
            self._lock.release()

    def detect_language(self, audio: AudioInput, *, sample_rate: int | None = None
                        ) -> list[tuple[str, float]]:
        """Languages ranked by probability for the first 30 s of ``audio``: [(code, p), ...]."""
        if not self.is_multilingual:
            raise ValueError("this model is English-only: it cannot detect languages")
        pcm = load_audio(audio, sample_rate)
        self._acquire()
        try:
            probs = self._core.detect_language(pcm, self.n_threads, 0)
        finally:
            self._lock.release()
        ranked = sorted(((_core.lang_str(i), float(p)) for i, p in enumerate(probs)),
                        key=lambda kv: -kv[1])
        return [(code, p) for code, p in ranked if code]

    def __repr__(self) -> str:
        return f"Whisper({str(self.path)!r}, n_threads={self.n_threads}, device={self.device!r})"
