"""Response bodies of the OpenAI API, as TypedDicts: the routes declare them (so ``/docs`` and
``/openapi.json`` show every JSON response) and build them as plain dicts.

TypedDicts, not pydantic models, because the API's shape depends on which keys are present:
a key that is absent (``tool_calls`` without calls, ``segments`` without segment timestamps)
stays absent, a ``None`` is sent as ``null``, and keys go out in the order declared here (the
order the OpenAI API uses). Streamed chunks have types too, for the type checker only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, with_config
from typing_extensions import NotRequired, TypedDict

ChatFinish = Literal["stop", "length", "tool_calls"]
TextFinish = Literal["stop", "length"]


# -- shared ------------------------------------------------------------------------------------

class PromptTokensDetails(TypedDict):
    cached_tokens: int


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


# -- chat completions --------------------------------------------------------------------------

class TopLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(TypedDict):
    content: list[TokenLogprob]
    refusal: None


class FunctionCall(TypedDict):
    name: str
    arguments: str


class ToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCall


class AssistantMessage(TypedDict):
    role: Literal["assistant"]
    content: str | None
    refusal: None
    tool_calls: NotRequired[list[ToolCall]]


class ChatChoice(TypedDict):
    index: int
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None
    finish_reason: ChatFinish


class ChatCompletion(TypedDict):
    id: str
    created: int
    model: str
    system_fingerprint: None
    object: Literal["chat.completion"]
    choices: list[ChatChoice]
    usage: Usage


class ToolCallDelta(ToolCall):
    index: int


class ChatDelta(TypedDict, total=False):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ToolCallDelta]


class ChatChunkChoice(TypedDict):
    index: int
    delta: ChatDelta
    logprobs: ChoiceLogprobs | None
    finish_reason: ChatFinish | None


class ChatCompletionChunk(TypedDict):
    id: str
    created: int
    model: str
    system_fingerprint: None
    object: Literal["chat.completion.chunk"]
    choices: list[ChatChunkChoice]
    usage: NotRequired[Usage]  # the last chunk's, with stream_options.include_usage


# -- (legacy) completions ----------------------------------------------------------------------

class TextLogprobs(TypedDict):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class TextChoice(TypedDict):
    index: int
    text: str
    logprobs: TextLogprobs | None
    finish_reason: TextFinish


class TextCompletion(TypedDict):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: None
    choices: list[TextChoice]
    usage: Usage


class TextChunkChoice(TypedDict):
    index: int
    text: str
    logprobs: TextLogprobs | None
    finish_reason: TextFinish | None


class TextCompletionChunk(TypedDict):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: None
    choices: list[TextChunkChoice]
    usage: NotRequired[Usage]


# -- embeddings --------------------------------------------------------------------------------

class Embedding(TypedDict):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # str: base64 of little-endian float32 (encoding_format)


class EmbeddingUsage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(TypedDict):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


# -- audio -------------------------------------------------------------------------------------

class Transcription(TypedDict):
    text: str


class TranscriptionSegment(TypedDict):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionWord(TypedDict):
    word: str
    start: float
    end: float


class VerboseTranscription(TypedDict):
    task: Literal["transcribe", "translate"]
    language: str
    duration: float
    text: str
    segments: NotRequired[list[TranscriptionSegment]]  # timestamp_granularities: segment
    words: NotRequired[list[TranscriptionWord]]  # timestamp_granularities: word


# -- images ------------------------------------------------------------------------------------

class Image(TypedDict):
    b64_json: str  # a PNG
    revised_prompt: None


class ImagesResponse(TypedDict):
    created: int
    data: list[Image]


# -- models and health -------------------------------------------------------------------------

class LLMMeta(TypedDict):
    kind: Literal["llm"]
    n_ctx: int
    n_parallel: int
    description: str


class SpeechMeta(TypedDict):
    kind: Literal["speech"]
    type: str
    multilingual: bool


class ImageMeta(TypedDict):
    kind: Literal["image"]
    size_multiple: int
    device: str


class ModelCard(TypedDict):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    meta: Annotated[LLMMeta | SpeechMeta | ImageMeta, Field(discriminator="kind")]


class ModelList(TypedDict):
    object: Literal["list"]
    data: list[ModelCard]


@with_config(ConfigDict(extra="allow"))  # Engine.stats() may tell more
class EngineStats(TypedDict):
    n_parallel: int
    n_ctx: int
    busy: int
    waiting: int
    steps: int
    cached_tokens: list[int]


class Health(TypedDict):
    status: Literal["ok"]
    uptime_s: float
    models: list[str]
    llm: NotRequired[EngineStats]


def sse_responses(chunk: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that streams with ``stream: true``: documents the event
    stream beside the JSON response."""
    return {200: {"content": {"text/event-stream": {"schema": {
        "type": "string", "description": f"with stream=true: server-sent events, each "
        f"'data: <a {chunk} as JSON>', then 'data: [DONE]'"}}}}}
