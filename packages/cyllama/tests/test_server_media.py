"""`cyllama serve --whisper M --sd M`: speech and images behind the same API, with the `openai`
client, compared with what cywhisper and cysd give for the same input in this process."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from server_helpers import Served, error_of, response_fields, serving

cywhisper = pytest.importorskip("cywhisper")
cysd = pytest.importorskip("cysd")
Image = pytest.importorskip("PIL.Image")

import speech  # noqa: E402 (tools/fixtures: pytest's pythonpath)
from tiny_sd import tiny_sd  # noqa: E402
from tiny_whisper import tiny_whisper  # noqa: E402


def wav_bytes(seconds: float = 2.0) -> bytes:
    return speech.wav_bytes(speech.tone(seconds, freq=440.0, level=0.4))


@pytest.fixture(scope="module")
def media(tiny_model: Path) -> Iterator[Served]:
    sd_model, taesd = tiny_sd()
    with serving(tiny_model, "--whisper", str(tiny_whisper()), "--sd", str(sd_model),
                 "--sd-taesd", str(taesd)) as served:
        yield served


@pytest.fixture(scope="module")
def whisper():  # type: ignore[no-untyped-def]
    return cywhisper.Whisper(tiny_whisper(), n_threads=2)


@pytest.fixture(scope="module")
def sd():  # type: ignore[no-untyped-def]
    model, taesd = tiny_sd()
    return cysd.StableDiffusion(model, taesd=taesd, n_threads=2)


def test_models_lists_all_three(media: Served) -> None:
    kinds = {m.id: m.model_extra["meta"]["kind"] for m in media.client.models.list().data}  # type: ignore[index]
    assert kinds == {media.name: "llm", tiny_whisper().stem: "speech",
                     tiny_sd()[0].stem: "image"}


def test_openapi_documents_the_responses(media: Served) -> None:
    spec = media.openapi()
    for path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        # json or verbose_json; text, srt and vtt beside them.
        assert {"text", "language", "duration", "segments", "words"} <= response_fields(
            spec, "post", path)
        assert {"text/plain", "text/vtt"} <= set(
            spec["paths"][path]["post"]["responses"]["200"]["content"])
    for path in ("/v1/images/generations", "/v1/images/edits"):
        assert {"created", "data"} <= response_fields(spec, "post", path)


def test_transcription_equals_the_library(media: Served, whisper, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    audio = tmp_path / "tone.wav"
    audio.write_bytes(wav_bytes())
    name = tiny_whisper().stem
    want = whisper.transcribe(str(audio), word_timestamps=True, language="en")
    with audio.open("rb") as f:
        r = media.client.audio.transcriptions.create(
            model=name, file=f, response_format="verbose_json", language="en",
            timestamp_granularities=["word", "segment"])
    assert r.text == want.text and r.language == "english"
    assert r.duration == pytest.approx(2.0, abs=0.01)
    assert [s.text for s in r.segments or []] == [s.text for s in want.segments]
    assert [(s.start, s.end) for s in r.segments or []] == [(s.start, s.end)
                                                           for s in want.segments]
    assert [w.word for w in r.words or []] == [w.text.strip() for s in want.segments
                                               for w in s.words]
    with audio.open("rb") as f:
        text = media.client.audio.transcriptions.create(model=name, file=f,
                                                        response_format="text", language="en")
    assert text.strip() == want.text  # type: ignore[union-attr]
    for fmt, render in (("srt", want.to_srt), ("vtt", want.to_vtt)):
        r2 = media.http.post("/v1/audio/transcriptions", files={"file": audio.read_bytes()},
                             data={"model": name, "response_format": fmt, "language": "en"})
        assert r2.status_code == 200 and r2.text == render()
    with audio.open("rb") as f:
        plain = media.client.audio.transcriptions.create(model=name, file=f, language="en")
    assert plain.text == want.text
    # (openai 3 marks its translations call deprecated: a raw request here.)
    tr = media.http.post("/v1/audio/translations", files={"file": audio.read_bytes()},
                         data={"model": name})
    assert tr.status_code == 200
    assert tr.json()["text"] == whisper.transcribe(str(audio), translate=True).text


def test_bad_audio_requests(media: Served) -> None:
    name = tiny_whisper().stem
    post = media.http.post
    err = error_of(post("/v1/audio/transcriptions", files={"file": ("a.wav", b"RIFF" + b"\0" * 60)},
                        data={"model": name}), 400)
    assert err["param"] == "file"
    err = error_of(post("/v1/audio/transcriptions", files={"file": ("a.mp3", b"not audio")},
                        data={"model": name}), 400)
    assert err["param"] == "file"
    err = error_of(post("/v1/audio/transcriptions", files={"file": ("a.wav", b"")},
                        data={"model": name}), 400)
    assert "empty" in err["message"]
    err = error_of(post("/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes(0.5))},
                        data={"model": "whisper-9"}), 404)
    assert err["code"] == "model_not_found"
    err = error_of(post("/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes(0.5))},
                        data={"model": name, "response_format": "mp3"}), 400)
    assert err["param"] == "response_format"
    err = error_of(post("/v1/audio/transcriptions", files={"file": ("a.wav", wav_bytes(0.5))},
                        data={"model": name, "language": "klingon"}), 400)
    assert "klingon" in err["message"]
    error_of(post("/v1/audio/transcriptions", data={"model": name}), 400)  # no file
    assert media.proc.poll() is None


def decode_png(b64: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def test_images_equal_the_library(media: Served, sd) -> None:  # type: ignore[no-untyped-def]
    name = tiny_sd()[0].stem
    r = media.client.images.generate(model=name, prompt="a red cube", size="128x64", n=2,
                                     response_format="b64_json",
                                     extra_body={"seed": 7, "steps": 2, "cfg_scale": 3.0})
    got = [decode_png(d.b64_json or "") for d in r.data or []]
    want = sd.txt2img("a red cube", width=128, height=64, steps=2, cfg_scale=3.0, seed=7,
                      batch_count=2, as_pil=False)
    assert len(got) == 2 and got[0].shape == (64, 128, 3)
    for g, w in zip(got, want, strict=True):
        assert np.array_equal(g, np.asarray(w))


def test_image_edits(media: Served) -> None:
    name = tiny_sd()[0].stem
    base = np.zeros((64, 64, 3), dtype=np.uint8)
    base[:, 32:] = 200
    buf = io.BytesIO()
    Image.fromarray(base).save(buf, format="PNG")
    mask = np.zeros((64, 64, 4), dtype=np.uint8)
    mask[..., 3] = 255
    mask[:32, :, 3] = 0  # transparent top half: repaint it
    mbuf = io.BytesIO()
    Image.fromarray(mask, "RGBA").save(mbuf, format="PNG")
    r = media.client.images.edit(model=name, image=("in.png", buf.getvalue(), "image/png"),
                                 mask=("mask.png", mbuf.getvalue(), "image/png"),
                                 prompt="a blue sky", extra_body={"seed": 1, "steps": 2})
    out = decode_png(r.data[0].b64_json or "")  # type: ignore[index]
    assert out.shape == (64, 64, 3)
    assert np.abs(out[:32].astype(int) - base[:32]).mean() > 1  # repainted
    r2 = media.client.images.edit(model=name, image=("in.png", buf.getvalue(), "image/png"),
                                  prompt="a blue sky", extra_body={"seed": 1, "steps": 2})
    assert decode_png(r2.data[0].b64_json or "").shape == (64, 64, 3)  # type: ignore[index]


def test_bad_image_requests(media: Served) -> None:
    name = tiny_sd()[0].stem
    post = media.http.post
    for size in ("100000x100000", "65x64", "big", "0x64"):
        err = error_of(post("/v1/images/generations", json={"model": name, "prompt": "x",
                                                           "size": size}), 400)
        assert err["param"] == "size"
    err = error_of(post("/v1/images/generations", json={"model": name, "prompt": "x",
                                                       "size": "64x64", "response_format": "url"}),
                   400)
    assert err["param"] == "response_format"
    err = error_of(post("/v1/images/generations", json={"model": name, "prompt": "x",
                                                       "size": "64x64", "n": 99}), 400)
    assert err["param"] == "n"
    err = error_of(post("/v1/images/generations", json={"model": name, "prompt": "x",
                                                       "size": "64x64", "sampler": "magic"}), 400)
    assert "magic" in err["message"]
    err = error_of(post("/v1/images/edits", files={"image": ("x.png", b"\x89PNG broken")},
                        data={"model": name, "prompt": "x"}), 400)
    assert err["param"] == "image"
    with pytest.raises(openai.NotFoundError):
        media.client.images.generate(model="dall-e-3", prompt="x", size="256x256")
    assert media.proc.poll() is None
    assert httpx.get(media.url + "/health").json()["status"] == "ok"
