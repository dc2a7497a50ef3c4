"""The ``cywhisper`` command (also ``python -m cywhisper``): transcribe, languages, info."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

RPC_HELP = "run on the first device of this RPC server (python -m ggml_family rpc-server)"


def _transcribe(args: argparse.Namespace) -> None:
    from cywhisper import Whisper

    w = Whisper(args.model, n_threads=args.threads, use_gpu=args.use_gpu, rpc=args.rpc)
    last = [-1]

    def progress(percent: int) -> None:
        if args.verbose and percent // 10 != last[0] // 10:
            print(f"[{percent}%]", file=sys.stderr)
        last[0] = percent

    t = w.transcribe(args.file, language=args.language, translate=args.translate,
                     word_timestamps=args.word_timestamps, initial_prompt=args.prompt,
                     beam_size=args.beam_size, temperature=args.temperature,
                     max_segment_chars=args.max_len, progress=progress)
    text = t.format(args.format)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _languages(args: argparse.Namespace) -> None:
    from cywhisper import Whisper

    w = Whisper(args.model, n_threads=args.threads, rpc=args.rpc)
    for code, p in w.detect_language(args.file)[: args.top]:
        print(f"{code}\t{p:.4f}")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``cywhisper`` console script (also ``python -m cywhisper``)."""
    from ggml_family.cli import command_parser, run_main

    parser, sub = command_parser("cywhisper", "whisper.cpp from Python")
    p_tr = sub.add_parser("transcribe", help="transcribe an audio file")
    p_tr.add_argument("file", help="audio file (WAV; others with cywhisper[audio])")
    p_tr.add_argument("-m", "--model", required=True, help="whisper.cpp model (ggml-*.bin)")
    p_tr.add_argument("-f", "--format", choices=["txt", "srt", "vtt", "json"], default="txt")
    p_tr.add_argument("-o", "--output", help="write here instead of stdout")
    p_tr.add_argument("-l", "--language", default=None, help="language code, or auto")
    p_tr.add_argument("--translate", action="store_true", help="translate into English")
    p_tr.add_argument("--word-timestamps", action="store_true")
    p_tr.add_argument("--prompt", default=None, help="initial prompt")
    p_tr.add_argument("--beam-size", type=int, default=None)
    p_tr.add_argument("--temperature", type=float, default=0.0)
    p_tr.add_argument("--max-len", type=int, default=None, help="max characters per segment")
    p_tr.add_argument("-t", "--threads", type=int, default=None)
    p_tr.add_argument("--use-gpu", action=argparse.BooleanOptionalAction, default=None)
    p_tr.add_argument("--rpc", metavar="HOST:PORT", help=RPC_HELP)
    p_lang = sub.add_parser("languages", help="detect the spoken language")
    p_lang.add_argument("file")
    p_lang.add_argument("-m", "--model", required=True)
    p_lang.add_argument("-t", "--threads", type=int, default=None)
    p_lang.add_argument("--top", type=int, default=5)
    p_lang.add_argument("--rpc", metavar="HOST:PORT", help=RPC_HELP)
    args = parser.parse_args(argv)
    return run_main("cywhisper", args, {"transcribe": lambda: _transcribe(args),
                                        "languages": lambda: _languages(args)})


if __name__ == "__main__":
    sys.exit(main())
