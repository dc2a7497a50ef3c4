"""Structure-aware sweeps: every header field of a format's base input set in turn to each of
its boundary values, one field per case, deterministic and exhaustive.

Random mutation rarely lands on the few bytes of a header that matter (a whisper.cpp file's
``ftype`` is 4 of its bytes); a header of a few dozen fields can be covered completely. A format's
fields are found by walking its base input the way its loader does; each field has a kind, and
each kind its boundary values: 0, 1, -1, the type's minimum and maximum, 2^31, 2^32-1, one past
an enumeration's last value, a value larger than the file.

    python tools/fuzz/fuzz.py --sweep                  # every swept format, every case
    python tools/fuzz/fuzz.py --sweep --formats whisper-model --show whisper-model:12
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache

import formats

#: The formats with a sweep, in the order they run.
FORMATS = ["gguf-llama", "gguf-lora", "gguf-sd", "whisper-model", "wav"]

# GGUF's value types (gguf.h): the scalars' struct codes, by type id; 8 is a string, 9 an array.
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q",
                 11: "q", 12: "d"}
_GGUF_TYPE_COUNT = 13
_GGML_TYPE_COUNT = 43  # one past ggml's last type id in the pinned ggml (ggml.h: GGML_TYPE_COUNT)
# How many elements of an array, and how many tensors, have their fields swept (the rest are
# like them): a vocabulary of 50,000 strings has 50,000 lengths.
_FIRST = 3


@dataclass(frozen=True)
class Field:
    """One field of a file: where it is, how it is stored and what it means."""

    offset: int
    code: str  # struct code, little-endian: I, i, Q, q, f, d, B, b, H, h, ?
    kind: str  # count, length, enum:<one past the last>, value
    name: str


def _values(f: Field, size: int) -> list[int | float]:
    """The boundary values of a field."""
    bits = 8 * struct.calcsize(f.code)
    if f.code in "fd":
        return [0.0, -1.0, float("nan"), float("inf"), -float("inf"), 3.4e38]
    if f.code == "?":
        return [0, 1, 2, 255]
    signed = f.code.islower()
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    values = {0, 1, lo, hi, -1 if signed else hi}
    if bits >= 32:
        values |= {2**31 - 1, 2**31, 2**32 - 1} if not signed else {2**31 - 1, -(2**31)}
    if f.kind.startswith("enum:"):
        values.add(int(f.kind[5:]))
    if f.kind in ("count", "length") and size <= hi:
        values.add(size)  # larger than the file can hold
    return sorted(v for v in values if lo <= v <= hi)


def _pack(f: Field, value: int | float) -> bytes:
    if f.code in "fd":
        return struct.pack("<" + f.code, value)
    bits = 8 * struct.calcsize(f.code)
    raw = int(value) & ((1 << bits) - 1)  # two's complement for the signed codes
    return raw.to_bytes(bits // 8, "little")


# -- walkers -------------------------------------------------------------------------------

def gguf_fields(data: bytes) -> list[Field]:
    """GGUF (gguf.h's layout): version, the tensor and key-value counts, then per key-value pair
    the key's length, the value type and the value (a string's length, an array's type and
    count and its first elements), then per tensor (the first few) its name length, dimensions,
    type and offset."""
    out = [Field(4, "I", "value", "version"), Field(8, "Q", "count", "n_tensors"),
           Field(16, "Q", "count", "n_kv")]
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)
    pos = 24

    def string(name: str, keep: bool) -> str:
        nonlocal pos
        (n,) = struct.unpack_from("<Q", data, pos)
        if keep:
            out.append(Field(pos, "Q", "length", f"{name} length"))
        text = data[pos + 8:pos + 8 + n].decode("utf-8", "replace")
        pos += 8 + n
        return text

    def value(vtype: int, name: str, keep: bool) -> None:
        nonlocal pos
        if vtype == 8:
            string(name, keep)
        elif vtype == 9:
            (etype,) = struct.unpack_from("<I", data, pos)
            out.append(Field(pos, "I", f"enum:{_GGUF_TYPE_COUNT}", f"{name} array type"))
            (count,) = struct.unpack_from("<Q", data, pos + 4)
            out.append(Field(pos + 4, "Q", "count", f"{name} array count"))
            pos += 12
            for i in range(count):
                value(etype, f"{name}[{i}]", keep and i < _FIRST)
        else:
            code = _GGUF_SCALARS[vtype]
            if keep:
                out.append(Field(pos, code, "value", name))
            pos += struct.calcsize(code)

    for _ in range(n_kv):
        key = string("key", False)
        out.append(Field(pos - 8 - len(key.encode()), "Q", "length", f"key {key!r} length"))
        (vtype,) = struct.unpack_from("<I", data, pos)
        out.append(Field(pos, "I", f"enum:{_GGUF_TYPE_COUNT}", f"{key} type"))
        pos += 4
        value(vtype, key, True)
    for t in range(n_tensors):
        keep = t < _FIRST
        name = string(f"tensor {t} name", keep)
        (n_dims,) = struct.unpack_from("<I", data, pos)
        if keep:
            out.append(Field(pos, "I", "count", f"tensor {name!r} n_dims"))
            out += [Field(pos + 4 + 8 * d, "Q", "count", f"tensor {name!r} ne[{d}]")
                    for d in range(n_dims)]
        pos += 4 + 8 * n_dims
        if keep:
            out.append(Field(pos, "I", f"enum:{_GGML_TYPE_COUNT}", f"tensor {name!r} type"))
            out.append(Field(pos + 4, "Q", "length", f"tensor {name!r} offset"))
        pos += 12
    return out


# whisper.cpp's header after the magic (whisper_hparams), then the mel filters' two counts.
_WHISPER_HEADER = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
                   "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")


def whisper_fields(data: bytes) -> list[Field]:
    """A whisper.cpp (ggml-format) file: the eleven header fields, the mel filters' counts, the
    vocabulary's count and its first tokens' lengths, and per tensor (the first few) its
    n_dims, name length, type and dimensions."""
    out = [Field(4 + 4 * i, "i", "enum:1000" if n == "ftype" else "count", n)
           for i, n in enumerate(_WHISPER_HEADER)]
    out += [Field(48, "i", "count", "mel n_mel"), Field(52, "i", "count", "mel n_fft")]
    n_mel, n_fft = struct.unpack_from("<ii", data, 48)
    pos = 56 + 4 * n_mel * n_fft
    (n_vocab,) = struct.unpack_from("<i", data, pos)
    out.append(Field(pos, "i", "count", "vocabulary n_vocab"))
    pos += 4
    for i in range(n_vocab):
        (n,) = struct.unpack_from("<I", data, pos)
        if i < _FIRST:
            out.append(Field(pos, "I", "length", f"token {i} length"))
        pos += 4 + n
    t = 0
    while pos + 12 <= len(data):
        n_dims, name_len, ttype = struct.unpack_from("<iii", data, pos)
        ne = struct.unpack_from(f"<{n_dims}i", data, pos + 12)
        name = data[pos + 12 + 4 * n_dims:pos + 12 + 4 * n_dims + name_len].decode()
        if t < _FIRST:
            out += [Field(pos, "i", "count", f"tensor {name!r} n_dims"),
                    Field(pos + 4, "i", "length", f"tensor {name!r} name length"),
                    Field(pos + 8, "i", f"enum:{_GGML_TYPE_COUNT}", f"tensor {name!r} type")]
            out += [Field(pos + 12 + 4 * d, "i", "count", f"tensor {name!r} ne[{d}]")
                    for d in range(n_dims)]
        elements = 1
        for n in ne:
            elements *= n
        pos += 12 + 4 * n_dims + name_len + _tensor_bytes(ttype, elements)
        t += 1
    return out


def _tensor_bytes(ttype: int, count: int) -> int:
    """The size of a whisper.cpp tensor's data (its fixtures are F32 or F16)."""
    if ttype not in (0, 1):
        raise ValueError(f"the sweep's whisper base has a tensor of type {ttype}")
    return count * (4 if ttype == 0 else 2)


def wav_fields(data: bytes) -> list[Field]:
    """A RIFF WAVE file: the RIFF size, then per chunk its size, and the fmt chunk's fields
    (format tag, channels, sample rate, byte rate, block align, bits per sample)."""
    out = [Field(4, "I", "length", "RIFF size")]
    pos = 12
    while pos + 8 <= len(data):
        tag = data[pos:pos + 4].decode("latin-1")
        (size,) = struct.unpack_from("<I", data, pos + 4)
        out.append(Field(pos + 4, "I", "length", f"{tag!r} chunk size"))
        if tag == "fmt ":
            out += [Field(pos + 8, "H", "enum:4", "fmt format tag"),  # 1 PCM, 3 float
                    Field(pos + 10, "H", "count", "fmt channels"),
                    Field(pos + 12, "I", "count", "fmt sample rate"),
                    Field(pos + 16, "I", "count", "fmt byte rate"),
                    Field(pos + 20, "H", "count", "fmt block align"),
                    Field(pos + 22, "H", "count", "fmt bits per sample")]
        pos += 8 + size + (size & 1)
    return out


_WALKERS = {"gguf-llama": gguf_fields, "gguf-lora": gguf_fields, "gguf-sd": gguf_fields,
            "whisper-model": whisper_fields, "wav": wav_fields}


@cache
def cases(fmt: str, once: bool = False) -> list[tuple[Field, int | float]]:
    """Every (field, value) of a format's sweep, in file order; a value equal to what the file
    holds is left out (that case is the base input). ``once``: one value per field, its
    largest (the CI's slice: every field at least once)."""
    data = formats.base(fmt)
    out = []
    for f in _WALKERS[fmt](data):
        (held,) = struct.unpack_from("<" + f.code, data, f.offset)
        values = [v for v in _values(f, len(data)) if v != held or v != v]
        out += [(f, v) for v in (values[-1:] if once else values)]
    return out


def case(fmt: str, index: int, once: bool = False) -> tuple[bytes, str]:
    """The input of one sweep case and what it is."""
    f, v = cases(fmt, once)[index]
    data = bytearray(formats.base(fmt))
    new = _pack(f, v)
    data[f.offset:f.offset + len(new)] = new
    return bytes(data), f"{f.name} = {v} (at {f.offset:#x})"


def count(fmt: str, once: bool = False) -> int:
    return len(cases(fmt, once))
