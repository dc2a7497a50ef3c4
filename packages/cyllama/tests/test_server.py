"""`cyllama serve`: the OpenAI-compatible server, driven by the official `openai` client (and
httpx for raw error shapes) over 127.0.0.1, on the tiny model."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import numpy as np
import openai
import pytest
from cyllama import LLM
from server_helpers import N_CTX, Served, error_of, response_fields, serving


@pytest.fixture(scope="module")
def server(tiny_model: Path) -> Iterator[Served]:
    with serving(tiny_model, "-np", "4", "--cors-origin", "http://app.example") as served:
        yield served


@pytest.fixture(scope="module")
def ref(tiny_model: Path) -> LLM:
    return LLM(tiny_model, n_ctx=N_CTX, n_threads=2)


def test_models_and_health(server: Served) -> None:
    models = server.client.models.list()
    assert [m.id for m in models.data] == [server.name]
    assert server.client.models.retrieve(server.name).id == server.name
    h = server.health()
    assert h["status"] == "ok" and h["llm"]["n_parallel"] == 4


def test_openapi_documents_the_responses(server: Served) -> None:
    spec = server.openapi()
    assert {"id", "choices", "usage"} <= response_fields(spec, "post", "/v1/chat/completions")
    assert {"id", "choices", "usage"} <= response_fields(spec, "post", "/v1/completions")
    assert {"data", "usage"} <= response_fields(spec, "post", "/v1/embeddings")
    assert {"object", "data"} <= response_fields(spec, "get", "/v1/models")
    assert {"id", "owned_by", "meta"} <= response_fields(spec, "get", "/v1/models/{name}")
    assert {"status", "uptime_s", "models", "llm"} <= response_fields(spec, "get", "/health")
    # Streaming is documented beside the JSON body.
    chat = spec["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert "text/event-stream" in chat


def test_chat_equals_the_library(server: Served, ref: LLM) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    r = server.client.chat.completions.create(model=server.name, messages=messages,  # type: ignore[arg-type]
                                              max_tokens=12, temperature=0)
    want = ref.chat(messages, max_tokens=12)
    assert r.choices[0].message.content == want.text
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 12
    assert r.usage.prompt_tokens == want.usage.prompt_tokens
    # The same conversation again: its prompt is found in the sequence's cache.
    again = server.client.chat.completions.create(model=server.name, messages=messages,  # type: ignore[arg-type]
                                                  max_tokens=12, temperature=0)
    assert again.choices[0].message.content == want.text
    assert again.usage is not None and again.usage.prompt_tokens_details is not None
    assert again.usage.prompt_tokens_details.cached_tokens == want.usage.prompt_tokens - 1


def test_chat_stream(server: Served, ref: LLM) -> None:
    messages = [{"role": "user", "content": "Tell me a story"}]
    chunks = list(server.client.chat.completions.create(
        model=server.name, messages=messages, max_tokens=16, temperature=0, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ref.chat(messages, max_tokens=16).text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 16
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 2


def test_completions_and_logprobs(server: Served, ref: LLM) -> None:
    r = server.client.completions.create(model=server.name, prompt="The quick brown fox",
                                         max_tokens=10, temperature=0, logprobs=2)
    want = ref.generate("The quick brown fox", max_tokens=10, logprobs=2)
    assert r.choices[0].text == want.text
    lp = r.choices[0].logprobs
    assert lp is not None and lp.token_logprobs is not None and want.logprobs is not None
    assert lp.token_logprobs == pytest.approx([x.logprob for x in want.logprobs], abs=2e-2)
    stream = server.client.completions.create(model=server.name, prompt="The quick brown fox",
                                              max_tokens=10, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in stream) == want.text


def test_chat_logprobs_and_n(server: Served) -> None:
    r = server.client.chat.completions.create(
        model=server.name, messages=[{"role": "user", "content": "hi"}], max_tokens=6,
        temperature=1.0, seed=7, n=3, logprobs=True, top_logprobs=2)
    assert [c.index for c in r.choices] == [0, 1, 2]
    texts = {c.message.content for c in r.choices}
    assert len(texts) > 1  # three seeds, three draws
    content = r.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == 6
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)
    again = server.client.chat.completions.create(
        model=server.name, messages=[{"role": "user", "content": "hi"}], max_tokens=6,
        temperature=1.0, seed=7, n=3)
    assert [c.message.content for c in again.choices] == [c.message.content for c in r.choices]


def test_json_schema_response(server: Served) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                               "rank": {"type": "integer"}},
              "required": ["city", "rank"], "additionalProperties": False}
    r = server.client.chat.completions.create(
        model=server.name, messages=[{"role": "user", "content": "A city as JSON"}],
        max_tokens=120, temperature=0,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "city", "schema": schema, "strict": True}})
    assert r.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(r.choices[0].message.content or ""), schema)
    obj = server.client.chat.completions.create(
        model=server.name, messages=[{"role": "user", "content": "JSON please"}],
        max_tokens=120, temperature=0, response_format={"type": "json_object"})
    assert obj.choices[0].message.content is not None
    assert obj.choices[0].message.content.startswith("{")


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10},
                                                    "unit": {"enum": ["C", "F"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {},
                                       "additionalProperties": False}}}


def test_tool_calls(server: Served) -> None:
    r = server.client.chat.completions.create(
        model=server.name, messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER, TIME], tool_choice="required", max_tokens=400, temperature=0)  # type: ignore[list-item]
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name in ("get_weather", "get_time")  # type: ignore[union-attr]
    spec = WEATHER if call.function.name == "get_weather" else TIME  # type: ignore[union-attr]
    jsonschema.validate(json.loads(call.function.arguments),  # type: ignore[union-attr]
                        spec["function"]["parameters"])  # type: ignore[index]
    forced = server.client.chat.completions.create(
        model=server.name, messages=[{"role": "user", "content": "What time is it?"}],
        tools=[WEATHER, TIME], max_tokens=400, temperature=0,  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert forced.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index,union-attr]
    # The call and its result go back as history; streaming gives the call in one delta.
    history = [{"role": "user", "content": "Weather in Paris?"},
               {"role": "assistant", "tool_calls": [call.model_dump()]},
               {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"}]
    chunks = list(server.client.chat.completions.create(
        model=server.name, messages=history, tools=[WEATHER], tool_choice="required",  # type: ignore[arg-type,list-item]
        max_tokens=400, temperature=0, stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    auto = server.client.chat.completions.create(
        model=server.name, messages=[{"role": "user", "content": "Hello"}], tools=[TIME],  # type: ignore[list-item]
        max_tokens=60, temperature=0)
    msg = auto.choices[0].message
    assert (msg.tool_calls is not None) != (msg.content is not None)


def test_embeddings(server: Served, ref: LLM) -> None:
    r = server.client.embeddings.create(model=server.name, input=["hello world", "bye"])
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert got == pytest.approx(ref.embed(["hello world", "bye"]), abs=1e-5)
    assert r.usage.prompt_tokens == len(ref.tokenize("hello world")) + len(ref.tokenize("bye"))
    raw = server.http.post("/v1/embeddings", json={"model": server.name, "input": "bye",
                                                   "encoding_format": "base64"}).json()
    vec = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert vec == pytest.approx(ref.embed("bye"), abs=1e-5)


def test_concurrent_clients_are_batched(server: Served, ref: LLM) -> None:
    # Long enough generations that the eight overlap even on the fast tiny model.
    # The texts must agree with one-at-a-time generation over their first 24 tokens (further on,
    # batched products summed in another order may flip a near-tie of the random model).
    prompts = [f"Count with me: {i}" for i in range(8)]
    want = {p: ref.generate(p, max_tokens=24).text for p in prompts}
    steps0 = server.health()["llm"]["steps"]

    def ask(p: str) -> str:
        r = server.client.completions.create(model=server.name, prompt=p, max_tokens=200,
                                             temperature=0)
        return r.choices[0].text

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        got = dict(zip(prompts, pool.map(ask, prompts), strict=True))
    assert all(got[p].startswith(want[p]) for p in prompts), (got, want)
    steps = server.health()["llm"]["steps"] - steps0
    assert steps < 8 * 200 * 0.6, f"{steps} decode steps for 8 x 200 tokens: not batched"


def test_disconnect_frees_the_slot(tiny_model: Path) -> None:
    # Two sequences asked for a window of 8192 tokens (~8000 decode steps to the end); the
    # client reads one chunk and hangs up. On the tiny model the engine makes a step every
    # ~0.5 ms while holding the GIL for much of it, so the hang-up takes a few hundred steps to
    # reach it: far from the end.
    window = 8192
    with serving(tiny_model, "-np", "2", "-c", str(window)) as server:
        body = {"model": server.name, "prompt": "It was a dark and stormy night",
                "temperature": 0, "stream": True, "n": 2}
        with server.http.stream("POST", "/v1/completions", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    break
        deadline = time.monotonic() + 20
        while server.health()["llm"]["busy"] and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = server.health()["llm"]
        assert stats["busy"] == 0
        print(f"{stats['steps']} decode steps before the disconnect freed the sequences")
        assert stats["steps"] < window / 4, f"{stats['steps']} steps: the sequences ran on"


def test_bad_requests_get_openai_errors(server: Served) -> None:
    post = server.http.post
    chat = "/v1/chat/completions"
    msgs = [{"role": "user", "content": "hi"}]
    err = error_of(post(chat, content=b'{"model": "x", "messages": [', ), 400)
    assert "not valid JSON" in err["message"]
    err = error_of(post(chat, content=b"[" * 100000 + b"]" * 100000), 400)  # RecursionError
    assert "parsing the body" in err["message"]
    err = error_of(post(chat, json={"model": "nope", "messages": msgs}), 404)
    assert err["code"] == "model_not_found" and err["param"] == "model"
    err = error_of(post(chat, json={"model": server.name, "messages": [
        {"role": "user", "content": "word " * 1200}]}), 400)
    assert err["code"] == "context_length_exceeded"
    err = error_of(post(chat, json={"model": server.name, "messages": msgs, "temperature": 5}),
                   400)
    assert err["param"] == "temperature" and err["type"] == "invalid_request_error"
    err = error_of(post(chat, json={"model": server.name, "messages": msgs, "max_tokens": -1}),
                   400)
    assert err["param"] == "max_tokens"
    err = error_of(post(chat, json={"model": server.name, "messages": msgs, "response_format": {
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "blob"}}}}), 400)
    assert err["param"] == "response_format" and "blob" in err["message"]
    err = error_of(post(chat, json={"model": server.name, "messages": msgs, "tools": [
        {"type": "function", "function": {"name": "bad name!"}}]}), 400)
    assert err["param"].startswith("tools")
    err = error_of(post(chat, json={"model": server.name, "messages": msgs,
                                    "tool_choice": "required"}), 400)
    assert err["param"] == "tool_choice"
    err = error_of(post(chat, json={"model": server.name, "messages": msgs,
                                    "logit_bias": {"99999999": 5}}), 400)
    assert "99999999" in err["message"]
    err = error_of(post(chat, json={"model": server.name, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}), 400)
    assert "image_url" in err["message"]
    error_of(post("/v1/embeddings", json={"model": server.name, "input": ""}), 400)
    error_of(server.http.get("/v1/nothing-here"), 404)
    err = error_of(httpx.post(server.url + chat, json={"model": server.name, "messages": msgs}),
                   401)
    assert err["code"] == "invalid_api_key"
    with openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0) as wrong, \
            pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    with pytest.raises(openai.BadRequestError, match="context window") as bad:
        server.client.completions.create(model=server.name, prompt="word " * 1200)
    assert bad.value.code == "context_length_exceeded" and bad.value.param == "prompt"
    assert server.health()["llm"]["busy"] == 0
    assert server.proc.poll() is None


def test_cors(server: Served) -> None:
    pre = httpx.options(server.url + "/v1/chat/completions", headers={
        "Origin": "http://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "http://app.example"
    other = httpx.options(server.url + "/v1/models", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in other.headers
    got = server.http.get("/v1/models", headers={"Origin": "http://app.example"})
    assert got.headers["access-control-allow-origin"] == "http://app.example"


def test_without_max_tokens_generation_runs_to_the_end(server: Served) -> None:
    r = server.client.completions.create(model=server.name, prompt="hi", temperature=0)
    assert r.usage is not None
    if r.choices[0].finish_reason == "length":  # the random model rarely ends by itself
        # The window full of evaluated tokens, and the last token predicted from it.
        assert r.usage.prompt_tokens + r.usage.completion_tokens == N_CTX + 1
    assert r.usage.completion_tokens > 16


def test_serve_needs_a_model() -> None:
    r = subprocess.run([sys.executable, "-m", "cyllama", "serve"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "give a model to serve" in r.stderr


def test_non_loopback_needs_a_key(tiny_model: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "cyllama", "serve", str(tiny_model),
                        "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True,
                       timeout=60, env={k: v for k, v in os.environ.items()
                                        if k != "CYLLAMA_API_KEY"})
    assert r.returncode != 0 and "--api-key" in r.stderr


def _one_load_request(server: Served, i: int) -> tuple[str, int]:
    """One request of the load test's mix: (kind, status)."""
    post, name = server.http.post, server.name
    msgs = [{"role": "user", "content": f"Question {i}"}]
    kind = ("chat", "stream", "malformed", "invalid", "abandoned", "embed", "overflow")[i % 7]
    if kind == "chat":
        r = post("/v1/chat/completions", json={"model": name, "messages": msgs, "max_tokens": 8})
        assert r.status_code != 200 or r.json()["choices"][0]["message"]["content"] is not None
        return kind, r.status_code
    if kind == "stream":
        body = {"model": name, "prompt": f"Story {i}", "max_tokens": 8, "stream": True}
        with server.http.stream("POST", "/v1/completions", json=body) as r:
            lines = [line for line in r.iter_lines() if line]
        assert lines[-1] == "data: [DONE]", lines[-3:]
        return kind, r.status_code
    if kind == "malformed":
        return kind, post("/v1/chat/completions", content=b'{"model": [}').status_code
    if kind == "invalid":
        bad = [{"model": name, "messages": msgs, "temperature": 9},
               {"model": "other", "messages": msgs},
               {"model": name, "messages": [{"role": "wizard", "content": "x"}]},
               {"model": name, "prompt": [1, -5]}][i % 4]
        path = "/v1/completions" if "prompt" in bad else "/v1/chat/completions"
        return kind, post(path, json=bad).status_code
    if kind == "abandoned":
        body = {"model": name, "prompt": f"Long story {i}", "max_tokens": 300, "stream": True}
        with server.http.stream("POST", "/v1/completions", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    break
        return kind, r.status_code
    if kind == "embed":
        return kind, post("/v1/embeddings", json={"model": name, "input": [f"text {i}"]}
                          ).status_code
    return kind, post("/v1/completions", json={"model": name, "prompt": "word " * 1200}
                      ).status_code


EXPECTED = {"chat": 200, "stream": 200, "malformed": 400, "invalid": (400, 404),
            "abandoned": 200, "embed": 200, "overflow": 400}


def _load(server: Served, n: int, workers: int) -> dict[str, list[int]]:
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda i: _one_load_request(server, i), range(n)))
    by_kind: dict[str, list[int]] = {}
    for kind, status in results:
        by_kind.setdefault(kind, []).append(status)
    return by_kind


def _settle(server: Served) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        h = server.health()["llm"]
        if not h["busy"] and not h["waiting"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"the engine did not go idle: {server.health()}")


def test_load(server: Served) -> None:
    """300 requests, 16 at a time: valid, malformed, invalid, abandoned streams, embeddings
    and oversized prompts. Every valid one is answered, no client mistake gives a 5xx, the
    server stays up and its memory comes back."""
    _load(server, 70, 16)  # warm up: allocator pools, FastAPI caches, one of each kind
    _settle(server)
    rss0 = server.rss_kb()
    by_kind = _load(server, 300, 16)
    _settle(server)
    for kind, statuses in by_kind.items():
        want = EXPECTED[kind]
        ok = want if isinstance(want, tuple) else (want,)
        assert all(s in ok for s in statuses), (kind, statuses)
    assert sum(map(len, by_kind.values())) == 300
    assert server.proc.poll() is None
    grown_mb = (server.rss_kb() - rss0) / 1024
    print(f"RSS after 300 requests: {grown_mb:+.1f} MB")
    assert grown_mb < 8, f"the server's RSS grew {grown_mb:.1f} MB over 300 requests"
