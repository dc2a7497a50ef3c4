"""Chat templates and multi-turn chat on the tiny model (the Gemma test checks a real one)."""

from __future__ import annotations

import pytest
from cyllama import LLM, chat_templates

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
JINJA = ("{% for m in messages %}[{{ m['role'] | upper }}] {{ m['content'] }}\n{% endfor %}"
         "{% if add_generation_prompt %}[ASSISTANT] {% endif %}")


def test_builtin_template_by_name(llm: LLM) -> None:
    assert "chatml" in chat_templates() and "gemma" in chat_templates()
    text = llm.apply_chat_template(MESSAGES, template="chatml")
    assert text == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
                    "<|im_start|>assistant\n")
    no_prompt = llm.apply_chat_template(MESSAGES, template="chatml", add_generation_prompt=False)
    assert text.startswith(no_prompt) and not no_prompt.endswith("assistant\n")


def test_model_without_template_uses_its_family_or_chatml(llm: LLM) -> None:
    assert llm.metadata["general.architecture"] == "llama"
    assert llm.chat_template == "chatml"
    assert llm.apply_chat_template(MESSAGES) == llm.apply_chat_template(MESSAGES,
                                                                        template="chatml")


def test_jinja_template(llm: LLM) -> None:
    pytest.importorskip("jinja2")
    text = llm.apply_chat_template(MESSAGES, template=JINJA)
    assert text == "[SYSTEM] Be brief.\n[USER] Hello\n[ASSISTANT] "
    refusing = "{{ raise_exception('only user turns') }}"
    with pytest.raises(ValueError, match="refused the messages: only user turns"):
        llm.apply_chat_template(MESSAGES, template=refusing)
    with pytest.raises(ValueError, match="failed to render"):
        llm.apply_chat_template(MESSAGES, template="{% for %}")


@pytest.mark.parametrize(
    ("messages", "error", "message"),
    [
        ([], ValueError, "messages is empty"),
        ("hello", TypeError, "messages must be a list"),
        ([{"role": "user"}], ValueError, r"messages\[0\] needs a string 'content'"),
        ([{"content": "x"}], ValueError, r"messages\[0\] needs a non-empty string 'role'"),
        ([MESSAGES[0], "hi"], TypeError, r"messages\[1\] must be a dict"),
    ],
)
def test_bad_messages(llm: LLM, messages: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        llm.chat(messages)  # type: ignore[arg-type]


def test_unknown_template_name(llm: LLM) -> None:
    with pytest.raises(ValueError, match="unknown chat template name 'nope'"):
        llm.apply_chat_template(MESSAGES, template="nope")


def test_chat_and_second_turn_reuses_the_cache(llm: LLM) -> None:
    llm.reset()
    first = llm.chat(MESSAGES, max_tokens=8)
    assert first.usage.cached_tokens == 0 and len(first.tokens) == 8
    history = [*MESSAGES, {"role": "assistant", "content": first.text},
               {"role": "user", "content": "More"}]
    second = llm.chat(history, max_tokens=8)
    assert second.usage.cached_tokens >= first.usage.prompt_tokens - 1
    assert second.usage.evaluated_prompt_tokens < second.usage.prompt_tokens
    streamed = llm.chat_stream(history, max_tokens=8)
    assert "".join(streamed) == second.text
    assert streamed.completion.usage.cached_tokens == second.usage.prompt_tokens - 1
