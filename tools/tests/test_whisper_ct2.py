"""tools/fixtures/whisper_ct2.py: a CTranslate2 Whisper converts to exactly the whisper.cpp model
it was made from (the tiny fixture, fused and renamed the way CTranslate2 stores it)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import tiny_whisper
from _whisper_format import mel_filters, read_model
from whisper_ct2 import ConversionError, _byte_decoder, convert

CT2_FLOAT16 = 4
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>"]


def _string(s: str) -> bytes:
    data = s.encode() + b"\0"
    return struct.pack("<H", len(data)) + data


def write_ct2(directory: Path, variables: dict[str, np.ndarray], vocab: list[bytes],
              spec: str = "WhisperSpec") -> Path:
    """A CTranslate2 (binary version 6) model directory: model.bin and vocabulary.txt."""
    directory.mkdir(parents=True, exist_ok=True)
    out = [struct.pack("<I", 6), _string(spec), struct.pack("<II", 3, len(variables))]
    for name, value in variables.items():
        value = np.asarray(value)
        dtype_id = {np.dtype("float16"): CT2_FLOAT16, np.dtype("int16"): 2,
                    np.dtype("int8"): 1, np.dtype("float32"): 0}[value.dtype]
        out += [_string(name), struct.pack(f"<B{value.ndim}I", value.ndim, *value.shape),
                struct.pack("<BI", dtype_id, value.nbytes), value.tobytes()]
    aliases = {"decoder/projection/weight": "decoder/embeddings/weight"}
    out.append(struct.pack("<I", len(aliases)))
    out += [_string(a) + _string(target) for a, target in aliases.items()]
    (directory / "model.bin").write_bytes(b"".join(out))
    to_char = {b: c for c, b in _byte_decoder().items()}
    lines = ["".join(to_char[b] for b in token) for token in vocab] + SPECIALS
    (directory / "vocabulary.txt").write_text("\n".join(lines), encoding="utf-8")
    return directory


def ct2_variables(t: dict[str, np.ndarray], heads: int) -> dict[str, np.ndarray]:
    """The tiny fixture's tensors as CTranslate2 names them, attention projections fused."""
    def h(a: np.ndarray) -> np.ndarray:
        return a.astype(np.float16)

    def norm(src: str) -> dict[str, np.ndarray]:
        return {"gamma": h(t[f"{src}.weight"]), "beta": h(t[f"{src}.bias"])}

    def linear(src: str) -> dict[str, np.ndarray]:
        return {"weight": h(t[f"{src}.weight"]), "bias": h(t[f"{src}.bias"])}

    def zero_bias(src: str) -> np.ndarray:
        return np.zeros(t[f"{src}.key.weight"].shape[0], np.float16)

    v: dict[str, np.ndarray] = {}

    def put(prefix: str, d: dict[str, np.ndarray]) -> None:
        v.update({f"{prefix}/{k}": a for k, a in d.items()})

    for side in ("encoder", "decoder"):
        v[f"{side}/num_heads"] = np.array(heads, np.int16)
        n_layers = len({k.split(".")[2] for k in t if k.startswith(f"{side}.blocks.")})
        for i in range(n_layers):
            src, dst = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            a = f"{src}.attn"
            put(f"{dst}/self_attention/layer_norm", norm(f"{src}.attn_ln"))
            put(f"{dst}/self_attention/linear_0", {
                "weight": h(np.concatenate([t[f"{a}.{p}.weight"]
                                            for p in ("query", "key", "value")])),
                "bias": h(np.concatenate([t[f"{a}.query.bias"], zero_bias(a),
                                          t[f"{a}.value.bias"]]))})
            put(f"{dst}/self_attention/linear_1", linear(f"{a}.out"))
            if side == "decoder":
                c = f"{src}.cross_attn"
                put(f"{dst}/attention/layer_norm", norm(f"{src}.cross_attn_ln"))
                put(f"{dst}/attention/linear_0", linear(f"{c}.query"))
                put(f"{dst}/attention/linear_1", {
                    "weight": h(np.concatenate([t[f"{c}.key.weight"], t[f"{c}.value.weight"]])),
                    "bias": h(np.concatenate([zero_bias(c), t[f"{c}.value.bias"]]))})
                put(f"{dst}/attention/linear_2", linear(f"{c}.out"))
            put(f"{dst}/ffn/layer_norm", norm(f"{src}.mlp_ln"))
            put(f"{dst}/ffn/linear_0", linear(f"{src}.mlp.0"))
            put(f"{dst}/ffn/linear_1", linear(f"{src}.mlp.2"))
    for i in (1, 2):
        v[f"encoder/conv{i}/weight"] = h(t[f"encoder.conv{i}.weight"])
        v[f"encoder/conv{i}/bias"] = h(t[f"encoder.conv{i}.bias"].reshape(-1))
    put("encoder/layer_norm", norm("encoder.ln_post"))
    v["encoder/position_encodings/encodings"] = h(t["encoder.positional_embedding"])
    v["decoder/embeddings/weight"] = h(t["decoder.token_embedding.weight"])
    v["decoder/position_encodings/encodings"] = h(t["decoder.positional_embedding"])
    put("decoder/layer_norm", norm("decoder.ln"))
    return v


def test_round_trip(tmp_path: Path) -> None:
    config = dict(tiny_whisper.CONFIG, n_vocab=51864)  # English-only: 50256 text tokens
    original = tiny_whisper.tensors(config)
    vocab = tiny_whisper._vocab()[:50256]
    # CTranslate2 stores float16: round the fixture's float32 tensors the same way first.
    expected = {k: a.astype(np.float16).astype(a.dtype) for k, a in original.items()}
    source = write_ct2(tmp_path / "ct2", ct2_variables(original, config["n_head"]), vocab)

    hparams, filters, got_vocab, tensors = read_model(convert(source, tmp_path / "m.bin"))

    assert hparams == dict(tiny_whisper.hparams(config), ftype=1)
    np.testing.assert_array_equal(filters, mel_filters(80))
    assert got_vocab == vocab  # every byte value, and words with a leading space
    assert tensors.keys() == expected.keys()
    for name, want in expected.items():
        assert tensors[name].dtype == want.dtype, name
        np.testing.assert_array_equal(tensors[name], want, err_msg=name)


def test_mel_filters_are_whispers() -> None:
    """Slaney-scale, Slaney-normalised: each triangle's area is 1 in mel-normalised units, the
    first filters are linear-spaced below 1 kHz, and values match librosa's to 1e-7."""
    bank = mel_filters(80)
    assert bank.shape == (80, 201) and bank.dtype == np.float32
    peaks = bank.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all() and peaks[0] == 1 and peaks[-1] == 192
    # librosa.filters.mel(sr=16000, n_fft=400, n_mels=80): first filter, bins 0..2
    np.testing.assert_allclose(bank[0, :3], [0.0, 0.02486259, 0.0], atol=1e-7)


@pytest.mark.parametrize("case", ["not whisper", "quantized", "bfloat16", "truncated"])
def test_bad_input(tmp_path: Path, case: str) -> None:
    d, vocab = tmp_path / "m", [b"a"]
    embeddings = {"decoder/embeddings/weight": np.zeros((2, 2), np.float16)}
    if case == "not whisper":
        write_ct2(d, embeddings, vocab, spec="TransformerSpec")
        match = "a TransformerSpec, not a Whisper model"
    elif case == "quantized":
        write_ct2(d, {**embeddings, "encoder/conv1/weight": np.zeros(4, np.int8),
                      "encoder/conv1/weight_scale": np.ones(1, np.float32)}, vocab)
        match = r"a quantized model \(encoder/conv1/weight\)"
    else:
        write_ct2(d, embeddings, vocab)
        data = bytearray((d / "model.bin").read_bytes())
        if case == "bfloat16":
            data[data.index(b"weight\0") + 7 + 1 + 8] = 5  # after the name, rank, dims: type
            match = "type 5"
        else:
            data = data[:40]
            match = "truncated"
        (d / "model.bin").write_bytes(bytes(data))
    with pytest.raises(ConversionError, match=match):
        convert(d, tmp_path / "out.bin")
