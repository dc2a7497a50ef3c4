"""Build step: stable-diffusion.cpp's tokenizer vocabularies as xz files.

Upstream compiles its vocabularies in, as C arrays of hex literals (src/tokenizers/vocab/*.hpp,
20 MB of object code: 86% of the extension). cysd leaves vocab.cpp out and ships the same bytes
xz-compressed next to the package instead (csrc/vocab.cpp reads them through cysd._tokenizers).

    python tokenizer_data.py VOCAB_DIR OUT_DIR NAME...

writes OUT_DIR/NAME.xz for each NAME (the array name less its suffix: clip_merges,
t5_tokenizer_json, mistral_merges, mistral_vocab_json, qwen2_merges, umt5_tokenizer_json).
"""

from __future__ import annotations

import lzma
import re
import sys
from pathlib import Path

#: file name -> (header, C array) in upstream's vocab directory.
ARRAYS = {
    "clip_merges": ("clip_t5.hpp", "clip_merges_utf8_c_str"),
    "t5_tokenizer_json": ("clip_t5.hpp", "t5_tokenizer_json_str"),
    "mistral_merges": ("mistral.hpp", "mistral_merges_utf8_c_str"),
    "mistral_vocab_json": ("mistral.hpp", "mistral_vocab_json_utf8_c_str"),
    "qwen2_merges": ("qwen.hpp", "qwen2_merges_utf8_c_str"),
    "umt5_tokenizer_json": ("umt5.hpp", "umt5_tokenizer_json_str"),
}


def extract(header: str, array: str) -> bytes:
    """The bytes of `static const unsigned char <array>[] = { 0x.., ... };` in `header`."""
    m = re.search(
        rf"static const unsigned char {re.escape(array)}\[\] = \{{([^}}]*)\}};", header
    )
    if m is None:
        raise SystemExit(f"tokenizer_data: array {array} not found (upstream changed its format?)")
    return bytes(int(tok, 16) for tok in m.group(1).replace(",", " ").split())


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    vocab, out, names = Path(argv[0]), Path(argv[1]), argv[2:]
    unknown = sorted(set(names) - ARRAYS.keys())
    if unknown:
        raise SystemExit(f"tokenizer_data: unknown vocabularies {unknown}; known: {sorted(ARRAYS)}")
    out.mkdir(parents=True, exist_ok=True)
    headers: dict[str, str] = {}
    for name in names:
        file, array = ARRAYS[name]
        if file not in headers:
            headers[file] = (vocab / file).read_text(encoding="ascii")
        data = extract(headers[file], array)
        packed = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
        (out / f"{name}.xz").write_bytes(packed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
