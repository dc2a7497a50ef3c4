"""generate() results and streaming: stop strings, finish reasons, UTF-8, cancellation."""

from __future__ import annotations

import pytest
from cyllama import LLM, Completion, Sampling, Stream

PROMPT = "the capital of"


def test_completion_fields(llm: LLM) -> None:
    llm.reset()
    out = llm.generate(PROMPT, max_tokens=6)
    assert isinstance(out, Completion) and str(out) == out.text
    assert out.finish_reason == "length" and len(out.tokens) == 6
    assert out.usage.prompt_tokens == len(llm.tokenize(PROMPT))
    assert out.usage.cached_tokens == 0 and out.usage.completion_tokens == 6
    assert out.timings.generated == 6 and out.timings.tokens_per_second > 0
    assert out.text == llm.detokenize(list(out.tokens)) or out.text.endswith(
        llm.detokenize(list(out.tokens)).lstrip())
    again = llm.generate(PROMPT, max_tokens=6)
    assert again.usage.cached_tokens == again.usage.prompt_tokens - 1  # all but the last


def test_stream_join_equals_generate(llm: LLM) -> None:
    for sampling in (None, Sampling(temperature=1.2, seed=5)):
        full = llm.generate(PROMPT, max_tokens=30, sampling=sampling)
        stream = llm.stream(PROMPT, max_tokens=30, sampling=sampling)
        assert isinstance(stream, Stream)
        pieces = list(stream)
        assert "".join(pieces) == full.text
        assert stream.completion.tokens == full.tokens
        assert len(pieces) > 1


def test_utf8_pieces_are_whole_characters(llm: LLM) -> None:
    # The tiny vocabulary has no piece for these: each character is 2-4 byte tokens.
    target = "héllo wörld ✓ 日本 🎉"
    grammar = 'root ::= "' + target + '"'
    out = llm.generate(PROMPT, max_tokens=60, grammar=grammar)
    assert out.text == target
    assert len(out.tokens) > len(target)  # characters did span several tokens
    pieces = list(llm.stream(PROMPT, max_tokens=60, grammar=grammar))
    assert "".join(pieces) == target
    for p in pieces:
        assert "\ufffd" not in p
        p.encode("utf-8")  # whole characters only
    assert len(pieces) < len(out.tokens)  # partial characters were held back


def test_stop_strings_are_not_emitted(llm: LLM) -> None:
    full = llm.generate(PROMPT, max_tokens=40).text
    stop = full[10:13]
    assert stop.strip()
    out = llm.generate(PROMPT, max_tokens=40, stop=[stop, "never-appears"])
    assert out.finish_reason == "stop" and out.stop == stop
    assert out.text == full[: full.index(stop)]
    streamed = llm.stream(PROMPT, max_tokens=40, stop=stop)
    pieces = list(streamed)
    assert "".join(pieces) == out.text
    assert all(stop not in p for p in pieces)
    assert streamed.completion.finish_reason == "stop"
    assert len(out.tokens) < len(llm.generate(PROMPT, max_tokens=40).tokens)


def test_stop_string_prefix_that_never_completes_is_emitted(llm: LLM) -> None:
    full = llm.generate(PROMPT, max_tokens=20).text
    stop = full[-3:] + "\x00"  # its prefix is the very end of the text: held back, then flushed
    out = llm.generate(PROMPT, max_tokens=20, stop=stop)
    assert out.text == full and out.finish_reason == "length"
    assert "".join(llm.stream(PROMPT, max_tokens=20, stop=stop)) == full


def test_breaking_out_cancels_and_keeps_the_llm_usable(llm: LLM) -> None:
    reference = llm.generate(PROMPT, max_tokens=20).text
    for i, _piece in enumerate(llm.stream(PROMPT, max_tokens=500)):
        if i == 3:
            break
    assert llm._ctx.n_past < 40  # stopped early
    assert llm._ctx.n_past == len(llm._cached)
    assert llm.generate(PROMPT, max_tokens=20).text == reference
    stream = llm.stream(PROMPT, max_tokens=500)
    next(stream)
    stream.close()
    with pytest.raises(StopIteration):
        next(stream)
    with pytest.raises(RuntimeError, match="has not finished"):
        _ = stream.completion
    assert llm.generate(PROMPT, max_tokens=20).text == reference


def test_a_superseded_stream_raises(llm: LLM) -> None:
    stream = llm.stream(PROMPT, max_tokens=50)
    next(stream)
    llm.generate("other words", max_tokens=3)
    with pytest.raises(RuntimeError, match="interrupted by another call"):
        list(stream)


def test_argument_errors_raise_at_the_call(llm: LLM) -> None:
    with pytest.raises(ValueError, match="max_tokens must be >= 0"):
        llm.stream(PROMPT, max_tokens=-1)
    with pytest.raises(ValueError, match="stop strings must be non-empty"):
        llm.stream(PROMPT, stop=[""])
    with pytest.raises(TypeError, match=r"sampling must be a cyllama\.Sampling"):
        llm.generate(PROMPT, sampling={"temperature": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prompt must be a str or a list of token ids"):
        llm.generate(3.5)  # type: ignore[arg-type]


def test_token_prompts(llm: LLM) -> None:
    tokens = llm.tokenize(PROMPT)
    assert llm.generate(tokens, max_tokens=8).text == llm.generate(PROMPT, max_tokens=8).text
    with pytest.raises(ValueError, match="out of range"):
        llm.generate([1, 10**7], max_tokens=2)
