"""cyllama.Engine: continuous batching of many generations over one model's weights."""

from __future__ import annotations

import json
import threading
import time

import jsonschema
import pytest
from cyllama import (
    LLM,
    ContextOverflowError,
    Engine,
    EngineClosedError,
    EngineRequest,
    Sampling,
)

PROMPTS = ["Hello world", "The quick brown fox", "a b c d e f", "one two three", "Paris is",
           "x y", "It was a dark and stormy night", "1 2 3 4"]


@pytest.fixture(scope="module")
def engine(llm: LLM):  # type: ignore[no-untyped-def]
    with Engine(llm, n_parallel=3, n_ctx=128) as e:
        yield e


def test_batch_equals_one_at_a_time(llm: LLM, engine: Engine) -> None:
    # More prompts than sequences: the rest wait and join as sequences free up.
    ref = [llm.generate(p, max_tokens=16) for p in PROMPTS]
    before = engine.stats()["steps"]
    out = engine.generate_batch(PROMPTS, max_tokens=16)
    assert [c.tokens for c in out] == [c.tokens for c in ref]
    assert [c.text for c in out] == [c.text for c in ref]
    assert all(c.usage.completion_tokens == 16 and c.finish_reason == "length" for c in out)
    # Decoded together: far fewer steps than 8 x 16 one-sequence decodes.
    steps = engine.stats()["steps"] - before
    assert steps < len(PROMPTS) * 16 / 2, steps


def test_each_request_has_its_own_options(llm: LLM, engine: Engine) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    free = llm.generate("Hello world", max_tokens=12)
    stop = free.text[3:6]
    reqs = [engine.submit("Hello world", max_tokens=5),
            engine.submit("Hello world", max_tokens=12, stop=stop),
            engine.submit("Hello world", max_tokens=40, json_schema=schema),
            engine.submit("Hello world", max_tokens=12, logprobs=3)]
    short, stopped, constrained, with_lps = (r.result(timeout=60) for r in reqs)
    assert short.tokens == free.tokens[:5]
    assert stopped.finish_reason == "stop" and stopped.stop == stop
    assert free.text.startswith(stopped.text) and stop not in stopped.text
    if constrained.finish_reason != "length":
        jsonschema.validate(json.loads(constrained.text), schema)
    assert constrained.text.startswith("{")
    ref = llm.generate("Hello world", max_tokens=12, logprobs=3)
    assert with_lps.logprobs is not None and ref.logprobs is not None
    for a, b in zip(with_lps.logprobs, ref.logprobs, strict=True):
        # (batched sums differ from one sequence's in the last digits: ~5e-3 seen)
        assert a.token == b.token and a.logprob == pytest.approx(b.logprob, abs=2e-2)
        assert [t for t, _, _ in a.top] == [t for t, _, _ in b.top]


def test_stream_pieces_join_to_the_result(llm: LLM, engine: Engine) -> None:
    req = engine.submit("The quick brown fox", max_tokens=20)
    pieces = list(req)
    assert "".join(pieces) == req.result().text == llm.generate("The quick brown fox",
                                                               max_tokens=20).text
    assert len(pieces) > 1


def test_cancel_frees_the_sequence(engine: Engine) -> None:
    # Cancelled on its first piece, from the engine's thread: a consumer thread's cancel can
    # come after the tiny model's last token (it raced the 100 tokens and once lost).
    submitted = threading.Event()
    pieces: list[str] = []
    holder: list[EngineRequest] = []

    def on_event(event: object) -> None:
        if isinstance(event, str):
            pieces.append(event)
            if len(pieces) == 1:
                submitted.wait(5)
                holder[0].cancel()

    req = engine.submit("It was a dark and stormy night", max_tokens=100, on_event=on_event)
    holder.append(req)
    submitted.set()
    c = req.result(timeout=30)
    assert c.finish_reason == "cancelled"
    assert len(pieces) <= 2 and c.usage.completion_tokens < 100  # nothing after the cancel
    deadline = time.monotonic() + 5
    while engine.stats()["busy"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.stats()["busy"] == 0
    assert engine.generate_batch(["x y"], max_tokens=3)[0].usage.completion_tokens == 3


def test_a_prompt_that_continues_a_finished_one_reuses_its_cache(engine: Engine) -> None:
    first = engine.generate_batch(["Paris is"], max_tokens=8)[0]
    prompt = engine.llm.tokenize("Paris is") + list(first.tokens) + engine.llm.tokenize(
        " and", add_special=False)
    second = engine.generate_batch([prompt], max_tokens=4)[0]
    assert second.usage.cached_tokens >= first.usage.prompt_tokens + 7


def test_same_seed_same_sampled_text(engine: Engine) -> None:
    s = Sampling(temperature=1.0, seed=1234)
    a, b = engine.generate_batch(["one two three", "one two three"], max_tokens=24, sampling=s)
    assert a.tokens == b.tokens
    c = engine.generate_batch(["one two three"], max_tokens=24,
                              sampling=Sampling(temperature=1.0, seed=99))[0]
    assert c.tokens != a.tokens


def test_mistakes_raise_at_submit(engine: Engine) -> None:
    with pytest.raises(TypeError, match="unknown option"):
        engine.submit("hi", max_token=3)  # type: ignore[call-arg]
    with pytest.raises(ContextOverflowError, match="context window"):
        engine.submit("a " * 200)
    with pytest.raises(ValueError, match="grammar"):
        engine.submit("hi", grammar="root ::= nothing")
    with pytest.raises(ValueError, match="max_tokens"):
        engine.submit("hi", max_tokens=-1)
    with pytest.raises(TypeError, match="sequence of prompts"):
        engine.generate_batch("hi")  # type: ignore[arg-type]
    assert engine.stats()["waiting"] == 0


def test_threads_submit_at_once(llm: LLM, engine: Engine) -> None:
    ref = {p: llm.generate(p, max_tokens=10).text for p in PROMPTS}
    got: dict[str, str] = {}

    def worker(p: str) -> None:
        got[p] = engine.submit(p, max_tokens=10).result(timeout=60).text

    threads = [threading.Thread(target=worker, args=(p,)) for p in PROMPTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ref


def test_chat_requests(llm: LLM, engine: Engine) -> None:
    messages = [{"role": "user", "content": "Hi there"}]
    assert (engine.submit_chat(messages, max_tokens=8).result(timeout=60).text
            == llm.chat(messages, max_tokens=8).text)


def test_close_ends_waiting_requests(llm: LLM) -> None:
    e = Engine(llm, n_parallel=1, n_ctx=128)
    reqs = [e.submit(p, max_tokens=100) for p in PROMPTS[:3]]
    e.close()
    for r in reqs:
        try:
            c = r.result(timeout=10)
        except EngineClosedError:
            continue
        assert c.usage.completion_tokens <= 100  # finished before the close
    with pytest.raises(EngineClosedError):
        e.submit("hi")


def test_parameters_are_checked(llm: LLM) -> None:
    with pytest.raises(ValueError, match="n_parallel"):
        Engine(llm, n_parallel=0)
    with pytest.raises(ValueError, match="n_ctx"):
        Engine(llm, n_ctx=2)


def test_a_request_that_fails_in_the_model_fails_alone(llm: LLM, engine: Engine) -> None:
    # A prompt that passed submit() but fails in llama_decode (here: a token id forged after
    # validation) ends with its error; the requests decoded in the same steps are unharmed.
    want = [llm.generate(p, max_tokens=8).text for p in PROMPTS[:2]]
    job = llm.model.job("hi", {}, 8, llm.n_ctx)
    job.tokens = [1, llm.n_vocab + 5]
    bad = engine._enqueue(job, None)
    good = [engine.submit(p, max_tokens=8) for p in PROMPTS[:2]]
    with pytest.raises(ValueError, match="out of range"):
        bad.result(timeout=30)
    assert [r.result(timeout=30).text for r in good] == want


def test_a_broken_listener_cancels_its_request_only(llm: LLM, engine: Engine,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: object) -> None:
        raise OSError("the client's socket is gone")

    bad = engine.submit("Hello world", max_tokens=50, on_event=broken)
    good = engine.submit("Hello world", max_tokens=6)
    assert good.result(timeout=30).text == llm.generate("Hello world", max_tokens=6).text
    deadline = time.monotonic() + 10
    while not bad.done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bad.cancelled and bad.done
    assert "on_event callable of request" in caplog.text
