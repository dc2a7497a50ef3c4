"""The fuzzed formats: each one's base input, its seeded mutations and what a worker does with a
case (load it, and use it the way a user would).

Binary formats are mutated in their first 64 KiB (headers, metadata, vocabularies: what the
loaders parse) by truncation, bit flips, extreme integers (0, -1, 2**31, 2**63 ...) and
spliced copies, plus format-aware changes (GGUF header counts, a duplicated vocabulary entry).
Text formats (GBNF grammars, JSON schemas) are valid inputs cut, spliced and salted with the
syntax's own characters, plus generated extremes (deep nesting, huge repetition counts).
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

WINDOW = 64 * 1024
EXTREMES = (0, 1, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
            0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 1 << 40)


def _rng(fmt: str, seed: int, index: int) -> random.Random:
    return random.Random(f"{fmt}/{seed}/{index}")


def mutate_bytes(base: bytes, rng: random.Random, extra: list[Callable[..., Any]] | None = None
                 ) -> tuple[bytes, str]:
    """One seeded mutation of ``base``: (the bytes, what was done)."""
    data = bytearray(base)
    limit = min(len(data), WINDOW)
    kinds = ["truncate", "bitflip", "bitflip", "extreme", "extreme", "splice"]
    kinds += [f.__name__ for f in extra or []]
    kind = rng.choice(kinds)
    if kind == "truncate":
        n = rng.randrange(len(data)) if rng.random() < 0.3 else rng.randrange(limit)
        return bytes(data[:n]), f"truncated to {n} bytes"
    if kind == "bitflip":
        spots = sorted(rng.randrange(limit) for _ in range(rng.randint(1, 8)))
        for pos in spots:
            data[pos] ^= 1 << rng.randrange(8)
        return bytes(data), f"bits flipped at {', '.join(hex(p) for p in spots)}"
    if kind == "extreme":
        done = []
        for _ in range(rng.randint(1, 3)):
            width = rng.choice((4, 8))
            pos = rng.randrange(0, max(limit - width, 1)) & ~3
            value = rng.choice(EXTREMES) & ((1 << (8 * width)) - 1)
            data[pos:pos + width] = value.to_bytes(width, "little")
            done.append(f"{value:#x}@{pos:#x}")
        return bytes(data), f"extreme values {', '.join(done)}"
    if kind == "splice":
        n = rng.randint(1, 256)
        src, dst = rng.randrange(limit), rng.randrange(limit)
        chunk = data[src:src + n]
        data[dst:dst + len(chunk)] = chunk
        return bytes(data), f"{len(chunk)} bytes from {src:#x} copied to {dst:#x}"
    for f in extra or []:
        if f.__name__ == kind:
            return f(data, rng)  # type: ignore[no-any-return]
    raise AssertionError(kind)


# -- GGUF --------------------------------------------------------------------------------------

def gguf_header(data: bytearray, rng: random.Random) -> tuple[bytes, str]:
    """The tensor or key-value count (u64 at 8 and 16) set to an extreme."""
    pos = rng.choice((8, 16))
    value = rng.choice(EXTREMES)
    data[pos:pos + 8] = value.to_bytes(8, "little")
    return bytes(data), f"GGUF {'n_tensors' if pos == 8 else 'n_kv'} = {value:#x}"


def gguf_dup_token(data: bytearray, rng: random.Random) -> tuple[bytes, str]:
    """One byte-fallback token's text made another's: two vocabulary entries the same."""
    a, b = rng.sample(range(256), 2)
    old, new = f"<0x{a:02X}>".encode(), f"<0x{b:02X}>".encode()
    at = bytes(data).find(old)
    if at < 0:
        return bytes(data), "no byte token found (unchanged)"
    data[at:at + len(old)] = new
    return bytes(data), f"token {old.decode()} renamed {new.decode()}"


def gguf_lengths(data: bytearray, rng: random.Random) -> tuple[bytes, str]:
    """A string or array length of the key-value section set to an extreme: found as a u64
    just before printable text."""
    spots = [i for i in range(24, min(len(data), WINDOW) - 9)
             if data[i + 4:i + 8] == b"\0\0\0\0" and 32 <= data[i + 8] < 127 and data[i] != 0]
    if not spots:
        return bytes(data), "no length found (unchanged)"
    pos = rng.choice(spots)
    value = rng.choice(EXTREMES)
    data[pos:pos + 8] = value.to_bytes(8, "little")
    return bytes(data), f"length at {pos:#x} = {value:#x}"


# -- images ------------------------------------------------------------------------------------

def image_size(data: bytearray, rng: random.Random) -> tuple[bytes, str]:
    """The width or height in the header (PNG's IHDR, JPEG's SOF0) set to an extreme."""
    value = rng.choice((0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, 100000))
    which = rng.choice(("width", "height"))
    if data[:4] == b"\x89PNG":
        struct.pack_into(">I", data, 16 if which == "width" else 20, value)
        return bytes(data), f"PNG {which} = {value:#x}"
    at = bytes(data).find(b"\xff\xc0")
    if at < 0:
        return bytes(data), "no JPEG frame header found (unchanged)"
    struct.pack_into(">H", data, at + (7 if which == "width" else 5), value & 0xFFFF)
    return bytes(data), f"JPEG {which} = {value & 0xFFFF:#x}"


def _image_bases() -> tuple[bytes, bytes]:
    """A 16x16 RGB PNG and JPEG of a seeded gradient with noise."""
    import io

    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 255, 16, dtype=np.float32)
    pixels = np.stack([ramp[None, :].repeat(16, 0), ramp[:, None].repeat(16, 1),
                       rng.uniform(0, 255, (16, 16))], axis=2).astype(np.uint8)
    out = []
    for kind in ("PNG", "JPEG"):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, kind)
        out.append(buf.getvalue())
    return out[0], out[1]


# -- text formats ------------------------------------------------------------------------------

GRAMMARS = [
    'root ::= "yes" | "no"',
    'root ::= [a-z]+ ("," [a-z]+)*',
    'root ::= num ([+*-] num)*\nnum ::= [0-9]{1,3} | "(" root ")"',
    'root ::= "{" ws "\\"a\\"" ws ":" ws [0-9]+ ws "}"\nws ::= [ \\t\\n]*',
    'root ::= item{2,4}\nitem ::= [^\\n"]{1,5} "\\n"',
    'root ::= ("\\u00e9" | "\\x41" | [\\u0100-\\u017f])+',
    'root ::= a\na ::= "x" b?\nb ::= "y" a?',
    'root ::= . . .',
]
GBNF_SALT = '()[]{}|*+?"\\-^.:=\n #0123456789,abcxyz'


def gbnf_case(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.08:
        depth = rng.choice((50, 500, 5000, 50000))
        return "root ::= " + "(" * depth + '"a"' + ")" * depth, f"nesting depth {depth}"
    if roll < 0.16:
        n = rng.choice((1000, 100000, 10**7, 10**12))
        return f'root ::= "a"{{{n}}}', f"repetition {{{n}}}"
    if roll < 0.22:
        n = rng.choice((100, 10000, 200000))
        return ("root ::= r0\n" + "".join(f"r{i} ::= r{i + 1} | \"a\"\n" for i in range(n))
                + f'r{n} ::= "b"', f"{n} chained rules")
    text = rng.choice(GRAMMARS)
    steps = []
    for _ in range(rng.randint(1, 4)):
        op = rng.choice(("delete", "insert", "duplicate", "swap"))
        i = rng.randrange(len(text) + 1)
        if op == "delete":
            j = min(len(text), i + rng.randint(1, 6))
            text = text[:i] + text[j:]
        elif op == "insert":
            text = text[:i] + "".join(rng.choice(GBNF_SALT) for _ in range(rng.randint(1, 4))) \
                + text[i:]
        elif op == "duplicate":
            j = min(len(text), i + rng.randint(1, 12))
            text = text[:j] + text[i:j] + text[j:]
        elif len(text) > 1:
            i = min(i, len(text) - 2)
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
        steps.append(f"{op}@{i}")
    return text, "mutated: " + " ".join(steps)


SCHEMA_KEYS = ["type", "properties", "required", "items", "prefixItems", "enum", "const",
               "anyOf", "oneOf", "allOf", "$ref", "$defs", "minItems", "maxItems",
               "minLength", "maxLength", "additionalProperties", "format", "pattern",
               "minimum", "description", "title", "definitions", "nullable"]
TYPES = ["object", "array", "string", "integer", "number", "boolean", "null", "blob", 3]


def _value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.3:
        return rng.choice([0, -1, 1, 10**9, 2**63, -(2**63), 1.5, "x", "", None, True, False,
                           "#/$defs/a", "#/nothing", [], {}])
    if roll < 0.5:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return random_schema(rng, depth + 1)


def random_schema(rng: random.Random, depth: int = 0) -> Any:
    if depth > 6 or rng.random() < 0.1:
        return rng.choice([True, False, {}, {"type": rng.choice(TYPES)}])
    out: dict[str, Any] = {}
    for _ in range(rng.randint(1, 4)):
        key = rng.choice(SCHEMA_KEYS)
        if key == "type":
            out[key] = rng.choice(TYPES) if rng.random() < 0.8 else rng.sample(TYPES[:7], 2)
        elif key in ("properties", "$defs", "definitions"):
            out[key] = {rng.choice(["a", "b", "", "é", "x y"]): random_schema(rng, depth + 1)
                        for _ in range(rng.randint(0, 3))}
        elif key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            out[key] = [random_schema(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        elif key in ("items", "additionalProperties"):
            out[key] = random_schema(rng, depth + 1)
        elif key == "required":
            out[key] = [rng.choice(["a", "b", "zz"]) for _ in range(rng.randint(0, 2))]
        elif key == "$ref":
            out[key] = rng.choice(["#/$defs/a", "#/definitions/b", "#", "#/properties/a",
                                   "http://x", "#/$defs/a/properties/b"])
        elif key in ("minItems", "maxItems", "minLength", "maxLength"):
            out[key] = rng.choice([0, 1, 5, -1, 10**6, 10**12, 1.5, "3"])
        else:
            out[key] = _value(rng, depth + 1)
    return out


def schema_case(rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.08:
        depth = rng.choice((20, 200, 2000))  # written out: json.dumps itself recurses
        text = '{"type": "array", "items": ' * depth + '{"type": "string"}' + "}" * depth
        return text, f"arrays nested {depth} deep"
    if roll < 0.14:
        return json.dumps({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}), \
            "a $ref to itself"
    return json.dumps(random_schema(rng)), "random"


# -- bases -------------------------------------------------------------------------------------

@cache
def tiny_llama_path() -> Path:
    from tiny_llama import tiny_llama
    return tiny_llama()


@cache
def base(fmt: str) -> bytes:
    """The valid input a binary format's cases mutate."""
    if fmt == "gguf-llama":
        return tiny_llama_path().read_bytes()
    if fmt == "gguf-lora":
        from tiny_llama import tiny_lora
        return tiny_lora().read_bytes()
    if fmt == "llama-state":
        import tempfile

        import cyllama
        llm = cyllama.LLM(tiny_llama_path(), n_ctx=64, n_threads=1)
        llm.generate("the quick brown fox", max_tokens=4)
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "state.bin"
            llm.save_state_file(path)
            return path.read_bytes()
    if fmt == "whisper-model":
        from tiny_whisper import tiny_whisper
        return tiny_whisper().read_bytes()
    if fmt == "wav":
        from speech import tone, wav_bytes
        return wav_bytes(tone(0.5))
    if fmt == "gguf-sd":
        from tiny_sd import tiny_esrgan
        return tiny_esrgan().read_bytes()
    if fmt == "safetensors":
        from tiny_sd import tiny_esrgan_safetensors
        return tiny_esrgan_safetensors().read_bytes()
    if fmt in ("png", "jpeg"):
        return _image_bases()[fmt == "jpeg"]
    raise KeyError(fmt)


EXTRA: dict[str, list[Callable[..., Any]]] = {
    "gguf-llama": [gguf_header, gguf_dup_token, gguf_lengths, gguf_lengths],
    "gguf-lora": [gguf_header, gguf_lengths],
    "gguf-sd": [gguf_header, gguf_lengths],
    "image": [image_size, image_size],
}

#: The driver's own test (not a format): the outcome of case i is SELFTEST[i].
SELFTEST = ("ok", "typed", "untyped", "abort", "ok", "hang", "ok")

#: Every format, in the order they run.
FORMATS = ["gguf-llama", "gguf-lora", "llama-state", "whisper-model", "wav", "gbnf",
           "json-schema", "gguf-sd", "safetensors", "image"]


def case(fmt: str, seed: int, index: int) -> tuple[bytes, str]:
    """The input of one case and what was done to make it."""
    rng = _rng(fmt, seed, index)
    if fmt == "selftest":
        what = SELFTEST[index % len(SELFTEST)]
        return what.encode(), what
    if fmt == "gbnf":
        text, how = gbnf_case(rng)
        return text.encode(), how
    if fmt == "json-schema":
        text, how = schema_case(rng)
        return text.encode(), how
    if fmt == "wav" and rng.random() < 0.1:  # a header that promises more than is there
        data = bytearray(base(fmt))
        struct.pack_into("<I", data, 40, rng.choice((0xFFFFFFFF, 0x7FFFFFFF, 3)))
        return bytes(data), "data chunk size forged"
    if fmt == "safetensors" and rng.random() < 0.3:  # the JSON header, mutated as text
        return safetensors_header(base(fmt), rng)
    if fmt == "image":  # PNG and JPEG by turns
        return mutate_bytes(base("jpeg" if index % 2 else "png"), rng, EXTRA[fmt])
    return mutate_bytes(base(fmt), rng, EXTRA.get(fmt))


def safetensors_header(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One tensor entry of the JSON header changed: its dtype, shape or data offsets."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    name = rng.choice([k for k in header if k != "__metadata__"])
    entry = header[name]
    field_ = rng.choice(("dtype", "shape", "data_offsets", "drop"))
    if field_ == "dtype":
        entry["dtype"] = rng.choice(["F16", "BF16", "I8", "U8", "F64", "I64", "BOOL", "F8_E4M3",
                                     "Q4", "", 3])
    elif field_ == "shape":
        entry["shape"] = rng.choice([[], [0], [-1], [2**31], [2**62, 2**62],
                                     entry["shape"][::-1], entry["shape"] + [1, 1, 1, 1]])
    elif field_ == "data_offsets":
        a, b = entry["data_offsets"]
        entry["data_offsets"] = rng.choice([[b, a], [a, a], [a, b + 4], [0, 2**40], [-8, b],
                                            [a], "x"])
    else:
        del header[name]
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    # the length prefix follows the new header; the tensor data stays where it was
    return (len(text).to_bytes(8, "little") + text + data[8 + size:],
            f"{name}: {field_} changed" if field_ != "drop" else f"{name} dropped")


def case_bytes(fmt: str, seed: int, index: int) -> bytes:
    return case(fmt, seed, index)[0]


def describe(fmt: str, seed: int, index: int) -> str:
    return case(fmt, seed, index)[1]
