"""The ``cyllama`` command (``python -m cyllama``): info, generate, chat, embed, bench, serve."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cyllama import LLM


def _print_info(as_json: bool, model: str | None, n_gpu_layers: int | None,
                rpc: list[str] | None) -> None:
    from ggml_family.cli import print_info

    import cyllama

    data = cyllama.info()
    if model is not None:
        llm = cyllama.LLM(model, n_ctx=256, n_gpu_layers=n_gpu_layers, rpc=rpc)
        data["model"] = {"path": model, "description": llm.description,
                         "n_gpu_layers": llm.n_gpu_layers, "layers": llm.layer_devices}
    print_info(data, as_json)
    if "model" in data and not as_json:
        m = data["model"]
        assert isinstance(m, dict)
        print(f"Model {m['path']} ({m['description']}), n_gpu_layers={m['n_gpu_layers']}:")
        for dev, n in m["layers"].items():
            print(f"  {n} layers on {dev}")


def _add_model_args(p: argparse.ArgumentParser, n_ctx: int = 2048, optional: bool = False
                    ) -> None:
    if optional:
        p.add_argument("model", nargs="?", help="GGUF model file")
    else:
        p.add_argument("model", help="GGUF model file")
    p.add_argument("-t", "--threads", type=int, default=None, help="CPU threads")
    p.add_argument("-c", "--n-ctx", type=int, default=n_ctx,
                   help="context window in tokens (serve: of each sequence)")
    p.add_argument("-ngl", "--n-gpu-layers", type=int, default=None,
                   help="layers on the GPU (-1 all; default all if a GPU plugin is loaded)")
    _add_rpc_arg(p)


def _add_rpc_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rpc", type=lambda v: v.split(","), default=None, metavar="HOST:PORT,...",
                   help="RPC servers (python -m ggml_family rpc-server) that take the layers "
                   "-ngl counts (default: all)")


def _add_sampling_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling (default: greedy)")
    g.add_argument("--temp", type=float, default=0.0, help="temperature; 0 is greedy")
    g.add_argument("--top-k", type=int, default=40)
    g.add_argument("--top-p", type=float, default=0.95)
    g.add_argument("--min-p", type=float, default=0.05)
    g.add_argument("--repeat-penalty", type=float, default=1.0)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("-n", "--max-tokens", type=int, default=256)
    g.add_argument("--stop", action="append", default=None, help="stop string (repeatable)")
    g.add_argument("--grammar", help="GBNF grammar file the output must follow")
    g.add_argument("--json-schema", help="JSON schema (file, or inline JSON) for the output")


def _sampling_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    from cyllama import Sampling

    sampling = Sampling(temperature=args.temp, top_k=args.top_k, top_p=args.top_p,
                        min_p=args.min_p, repeat_penalty=args.repeat_penalty, seed=args.seed)
    schema: object = None
    if args.json_schema:
        path = Path(args.json_schema)
        schema = path.read_text() if path.is_file() else args.json_schema
    grammar = Path(args.grammar).read_text() if args.grammar else None
    return {"max_tokens": args.max_tokens, "sampling": sampling, "stop": args.stop,
            "grammar": grammar, "json_schema": schema}


def _load(args: argparse.Namespace) -> LLM:
    from cyllama import LLM

    return LLM(args.model, n_ctx=args.n_ctx, n_threads=args.threads,
               n_gpu_layers=args.n_gpu_layers, rpc=args.rpc)


def _generate(args: argparse.Namespace) -> None:
    llm = _load(args)
    stream = llm.stream(args.prompt, **_sampling_kwargs(args))
    if not args.no_echo:
        sys.stdout.write(args.prompt)
    for piece in stream:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    c = stream.completion
    if args.verbose:
        print(f"[{c.usage.completion_tokens} tokens, {c.finish_reason}, "
              f"{c.timings.tokens_per_second:.1f} tokens/s]", file=sys.stderr)


def _chat(args: argparse.Namespace) -> None:
    llm = _load(args)
    kwargs = _sampling_kwargs(args)
    messages: list[dict[str, str]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    interactive = sys.stdin.isatty()
    if interactive:
        print("cyllama chat: /reset starts over, /exit (or Ctrl-D) quits", file=sys.stderr)
    while True:
        if interactive:
            sys.stderr.write("> ")
            sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            break
        text = line.rstrip("\n")
        if text.strip() == "/exit":
            break
        if text.strip() == "/reset":
            del messages[1 if args.system else 0:]
            continue
        if not text.strip():
            continue
        messages.append({"role": "user", "content": text})
        stream = llm.chat_stream(messages, template=args.template, **kwargs)
        try:
            for piece in stream:
                sys.stdout.write(piece)
                sys.stdout.flush()
        except KeyboardInterrupt:  # stop this reply, keep the conversation
            stream.close()
            messages.pop()
            sys.stdout.write("\n")
            continue
        sys.stdout.write("\n")
        sys.stdout.flush()
        messages.append({"role": "assistant", "content": stream.completion.text})


def _embed(args: argparse.Namespace) -> None:
    llm = _load(args)
    vectors = llm.embed(args.texts, normalize=not args.no_normalize, pooling=args.pooling)
    for row in vectors:
        print(json.dumps([round(float(x), 6) for x in row]))


def _bench(args: argparse.Namespace) -> None:
    from cyllama import LLM, _bench

    llm = LLM(args.model, n_ctx=max(args.n_prompt, args.n_gen + 16) + 16, n_threads=args.threads,
              n_batch=args.n_prompt, n_gpu_layers=args.n_gpu_layers, rpc=args.rpc)
    res = _bench.run(llm, n_prompt=args.n_prompt, n_gen=args.n_gen, reps=args.reps)
    if args.json:
        print(json.dumps({**res.as_dict(), "layers": llm.layer_devices}))
        return
    print(f"{llm.description}, {llm.n_threads} threads, median of {res.reps}")
    print(f"pp{res.n_prompt}: {res.pp_tokens_per_second:8.1f} tokens/s")
    print(f"tg{res.n_gen}: {res.tg_tokens_per_second:8.1f} tokens/s "
          f"({res.tg_outside_decode_us:.0f} us per token outside llama_decode)")


def _serve(args: argparse.Namespace) -> None:
    import os

    from cyllama.server import Server, is_loopback

    api_key = args.api_key or os.environ.get("CYLLAMA_API_KEY") or None
    if not is_loopback(args.host) and not api_key:
        raise SystemExit(f"cyllama serve: binding {args.host} lets other machines in; pass "
                         "--api-key KEY (or set CYLLAMA_API_KEY) so that only your clients "
                         "can use it")
    if not (args.model or args.whisper or args.sd):
        raise SystemExit("cyllama serve: give a model to serve (a GGUF language model, "
                         "--whisper MODEL and/or --sd MODEL)")
    llm = _load(args) if args.model else None
    whisper = sd = None
    if args.whisper:
        try:
            from cywhisper import Whisper
        except ImportError:
            raise SystemExit("cyllama serve --whisper needs cywhisper: pip install cywhisper"
                             ) from None
        whisper = Whisper(args.whisper, n_threads=args.threads)
    if args.sd:
        try:
            from cysd import StableDiffusion
        except ImportError:
            raise SystemExit("cyllama serve --sd needs cysd: pip install cysd") from None
        sd = StableDiffusion(args.sd, taesd=args.sd_taesd, n_threads=args.threads)
    server = Server(llm, whisper=whisper, sd=sd, name=args.alias, n_parallel=args.parallel,
                    n_ctx=args.n_ctx, api_key=api_key, cors_origins=args.cors_origin or ())
    server.run(args.host, args.port, log_level=args.log_level)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``cyllama`` console script (also ``python -m cyllama``)."""
    from ggml_family.cli import command_parser, run_main

    parser, sub = command_parser("cyllama", "llama.cpp from Python")
    p_info = sub.choices["info"]
    p_info.add_argument("--model", help="also load this model and show where its layers run")
    p_info.add_argument("--n-gpu-layers", type=int, default=None)
    _add_rpc_arg(p_info)
    p_gen = sub.add_parser("generate", help="continue a prompt, streaming")
    _add_model_args(p_gen)
    p_gen.add_argument("prompt")
    p_gen.add_argument("--no-echo", action="store_true", help="do not print the prompt")
    _add_sampling_args(p_gen)
    p_chat = sub.add_parser("chat", help="interactive chat (one user message per line)")
    _add_model_args(p_chat, n_ctx=4096)
    p_chat.add_argument("--system", help="system message")
    p_chat.add_argument("--template", help="chat template: a built-in name or a Jinja file")
    _add_sampling_args(p_chat)
    p_emb = sub.add_parser("embed", help="print one JSON embedding per text")
    _add_model_args(p_emb, n_ctx=512)
    p_emb.add_argument("texts", nargs="+")
    p_emb.add_argument("--pooling", choices=["mean", "cls", "last"], default=None)
    p_emb.add_argument("--no-normalize", action="store_true")
    p_bench = sub.add_parser("bench", help="prompt processing and generation speed")
    p_bench.add_argument("model", help="GGUF model file")
    p_bench.add_argument("-t", "--threads", type=int, default=None)
    p_bench.add_argument("-p", "--n-prompt", type=int, default=512)
    p_bench.add_argument("-n", "--n-gen", type=int, default=128)
    p_bench.add_argument("-r", "--reps", type=int, default=3)
    p_bench.add_argument("-ngl", "--n-gpu-layers", type=int, default=None)
    _add_rpc_arg(p_bench)
    p_bench.add_argument("--json", action="store_true")
    p_serve = sub.add_parser("serve", help="an OpenAI-compatible HTTP server (the [server] "
                                           "extra)")
    _add_model_args(p_serve, n_ctx=4096, optional=True)  # -c: the window of each sequence
    p_serve.add_argument("--whisper", help="also serve this whisper.cpp model (cywhisper)")
    p_serve.add_argument("--sd", help="also serve this Stable Diffusion model (cysd)")
    p_serve.add_argument("--sd-taesd", help="a TAESD decoder for the --sd model (faster)")
    p_serve.add_argument("--host", default="127.0.0.1",
                         help="address to bind (default 127.0.0.1; others need --api-key)")
    p_serve.add_argument("--port", type=int, default=8080, help="port (0: a free one)")
    p_serve.add_argument("-np", "--parallel", type=int, default=4,
                         help="requests decoded together (continuous batching)")
    p_serve.add_argument("--alias", default=None,
                         help="model name clients send (default: the file name's stem)")
    p_serve.add_argument("--api-key", default=None,
                         help="require 'Authorization: Bearer KEY' (or set CYLLAMA_API_KEY)")
    p_serve.add_argument("--cors-origin", action="append", default=None,
                         help="allow browser calls from this origin (repeatable; * for any)")
    p_serve.add_argument("--log-level", default="info",
                         choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    if getattr(args, "template", None) and Path(args.template).is_file():
        args.template = Path(args.template).read_text()
    return run_main("cyllama", args, {
        "info": lambda: _print_info(args.json, args.model, args.n_gpu_layers, args.rpc),
        "generate": lambda: _generate(args), "chat": lambda: _chat(args),
        "embed": lambda: _embed(args), "bench": lambda: _bench(args),
        "serve": lambda: _serve(args)})


if __name__ == "__main__":
    sys.exit(main())
