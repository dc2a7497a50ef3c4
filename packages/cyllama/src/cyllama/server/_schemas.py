"""Request bodies of the OpenAI API, as pydantic models: their validation is the server's first
line against malformed requests (a failure becomes a 400 naming the field). (The multipart
forms of audio and image edits are their routes' parameters.)

Fields the API defines and this server does not use are accepted and ignored (clients send
them); llama.cpp-style sampling extensions (``top_k``, ``min_p``, ``repeat_penalty``) are
accepted too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Stop = str | Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=16)] | None


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Body):
    include_usage: bool = False


class JSONSchemaFormat(_Body):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class FunctionDef(_Body):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object",
                                                                "properties": {}})
    strict: bool | None = None


class Tool(_Body):
    type: Literal["function"]
    function: FunctionDef


class ToolChoiceFunction(_Body):
    name: str


class ToolChoice(_Body):
    type: Literal["function"]
    function: ToolChoiceFunction


class ToolCallFunction(_Body):
    name: str
    arguments: str


class ToolCall(_Body):
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ContentPart(_Body):
    type: str
    text: str | None = None


class ChatMessage(_Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class CompletionBase(_Body):
    """What chat and text completions share."""

    model: str
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=0)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] = 1.0
    top_p: Annotated[float, Field(gt=0, le=1)] = 1.0
    n: Annotated[int, Field(ge=1, le=16)] = 1
    stop: Stop = None
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] = 0.0
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] = 0.0
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    user: str | None = None
    # llama.cpp's extensions
    top_k: Annotated[int, Field(ge=0)] = 0
    min_p: Annotated[float, Field(ge=0, le=1)] = 0.0
    repeat_penalty: Annotated[float, Field(gt=0)] = 1.0


class ChatCompletionRequest(CompletionBase):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int, Field(ge=0)] | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoice | None = None
    parallel_tool_calls: bool | None = None


class CompletionRequest(CompletionBase):
    prompt: str | Annotated[list[str], Field(min_length=1)] | Annotated[
        list[int], Field(min_length=1)]
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    echo: bool = False
    suffix: str | None = None
    best_of: Annotated[int, Field(ge=1, le=1)] | None = None
    response_format: ResponseFormat | None = None


class EmbeddingRequest(_Body):
    model: str
    input: str | Annotated[list[str], Field(min_length=1, max_length=2048)] | Annotated[
        list[int], Field(min_length=1)] | Annotated[list[list[int]], Field(min_length=1)]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None


class ImageRequest(_Body):
    model: str
    prompt: Annotated[str, Field(min_length=1, max_length=8000)]
    n: Annotated[int, Field(ge=1, le=10)] = 1
    size: str = "512x512"
    response_format: Literal["b64_json", "url"] = "b64_json"
    quality: str | None = None
    style: str | None = None
    user: str | None = None
    # stable-diffusion.cpp's settings, as documented extensions
    negative_prompt: str = ""
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    steps: Annotated[int, Field(ge=1, le=150)] | None = None
    cfg_scale: Annotated[float, Field(ge=0, le=100)] | None = None
    sampler: str | None = None
    scheduler: str | None = None
