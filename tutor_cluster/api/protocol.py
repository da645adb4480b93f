"""HTTP protocol of API v1: request, response and error models (pydantic)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from tutor_cluster.turns.types import (
    ID_PATTERN,
    MAX_MESSAGE_CHARS,
    AuditRecord,
    AuditTrail,
    Citation,
    Cost,
    LearnerView,
    MasteryChange,
    MemoryReceipt,
    SkillView,
    TurnRequest,
    TurnResult,
    Usage,
)

__all__ = ["AuditRecord", "AuditTrail", "Citation", "Cost", "LearnerView", "MasteryChange", "MemoryReceipt",
           "SkillView", "TurnRequest", "TurnResponse", "Usage"]

TurnResponse = TurnResult  # the HTTP response of POST /v1/tutor/turns is the turn service's result as is
#: Prefix of a validation message for a documented parameter we cannot honour (e.g. ``n`` > 1, ``tools``);
#: the error handler turns it into code ``unsupported_parameter``.
UNSUPPORTED = "unsupported: "


# ---------------------------------------------------------------- errors
class ErrorDetail(BaseModel):
    type: str = Field(description="Machine-readable kind, e.g. invalid_request, unauthorized, payload_too_large.")
    message: str = Field(description="What went wrong and how to fix it.")
    field: str | None = Field(default=None, description="The request field at fault, as a dotted path.")
    code: str = Field(description="Stable code: missing_field, unknown_field, invalid_value, invalid_api_key, ...")


class ErrorResponse(BaseModel):
    """The error shape of tutor-cluster's own routes (/v1/tutor, /v1/learners, /v1/curriculum, /v1/admin)."""

    error: ErrorDetail


class OpenAIErrorDetail(BaseModel):
    message: str = Field(description="What went wrong and how to fix it.")
    type: str = Field(description="OpenAI's error type: invalid_request_error, authentication_error, ...")
    param: str | None = Field(default=None, description="The request parameter at fault, as a dotted path.")
    code: str | None = Field(default=None, description="Stable code, as in ErrorDetail.code.")


class OpenAIErrorResponse(BaseModel):
    """The error shape of the OpenAI-compatible routes (/v1/chat/completions, /v1/models), as OpenAI and vLLM
    answer, so the official SDKs raise the right exception with ``param`` and ``code`` set."""

    error: OpenAIErrorDetail


#: Documented error responses (OpenAPI) of our routes and of the OpenAI-compatible ones.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 403, 404, 413, 422, 429, 502, 503, 504)}
OPENAI_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": OpenAIErrorResponse} for code in (400, 401, 403, 404, 413, 429, 502, 503, 504)}

#: OpenAI's error type by HTTP status (5xx: server_error).
OPENAI_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                      404: "not_found_error", 413: "invalid_request_error", 415: "invalid_request_error",
                      422: "invalid_request_error", 429: "rate_limit_error"}


def is_openai_path(path: str) -> bool:
    """Routes that answer in OpenAI's error shape and status codes."""
    return path.startswith("/v1/chat/") or path == "/v1/models" or path.startswith("/v1/models/")


def openai_status(status: int) -> int:
    """OpenAI and vLLM answer an invalid request with 400, where our own routes say 422."""
    return 400 if status == 422 else status


def render_error(path: str, status: int, type_: str, message: str, field: str | None = None,
                 code: str | None = None) -> tuple[int, dict[str, Any]]:
    """Status and body of an error on ``path``: its route family decides the shape (and 422 → 400 for OpenAI's)."""
    openai = is_openai_path(path)
    status = openai_status(status) if openai else status
    return status, error_body(type_, message, field, code, status=status, openai=openai)


def error_body(type_: str, message: str, field: str | None = None, code: str | None = None, *,
               status: int = 400, openai: bool = False) -> dict[str, Any]:
    """The one place an error body is shaped: ours, or OpenAI's for the OpenAI-compatible routes."""
    if openai:
        kind = OPENAI_ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        detail = OpenAIErrorDetail(message=message, type=kind, param=field, code=code or type_)
        return OpenAIErrorResponse(error=detail).model_dump()
    return ErrorResponse(error=ErrorDetail(type=type_, message=message, field=field, code=code or type_)
                         ).model_dump(exclude_none=True)


# ---------------------------------------------------------------- OpenAI-compatible
class ContentPart(BaseModel):
    """One part of a message's content. OpenAI documents text, image, audio and file parts; a tutor reads text."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_only(self) -> "ContentPart":
        if self.type != "text":
            raise ValueError(f"{UNSUPPORTED}content parts of type {self.type!r}: this API reads text parts only")
        if self.text is None:
            raise ValueError("a text part needs 'text'")
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[ContentPart]
    name: str | None = None
    tool_call_id: str | None = Field(default=None, description="OpenAI: for role 'tool' (not offered here).")
    tool_calls: list[dict[str, Any]] | None = Field(default=None, description="OpenAI: tool calls (not offered).")
    refusal: str | None = Field(default=None, description="OpenAI: an assistant's refusal (kept as history).")

    @field_validator("role")
    @classmethod
    def _no_tool_role(cls, v: str) -> str:
        if v == "tool":
            raise ValueError(f"{UNSUPPORTED}role 'tool' answers a tool call, and this API offers no tools")
        return v

    @field_validator("tool_calls", "tool_call_id")
    @classmethod
    def _no_tool_calls(cls, v: Any) -> Any:
        if v:
            raise ValueError(f"{UNSUPPORTED}tool calls: this API offers no tools")
        return v

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"] = Field(description="json_object / json_schema: JSON mode.")
    json_schema: dict[str, Any] | None = Field(default=None, description="For type json_schema: name, schema, strict.")

    @model_validator(mode="after")
    def _schema_given(self) -> "ResponseFormat":
        if self.type == "json_schema" and not (self.json_schema or {}).get("schema"):
            raise ValueError("type 'json_schema' needs json_schema.schema")
        return self


#: OpenAI parameters this API documents as not offered: each is answered 400 (code unsupported_parameter).
UNSUPPORTED_PARAMS = {
    "tools": "this API offers no tools",
    "tool_choice": "this API offers no tools",
    "functions": "this API offers no functions (deprecated by OpenAI too)",
    "function_call": "this API offers no functions (deprecated by OpenAI too)",
    "audio": "this API answers in text only",
    "modalities": "this API answers in text only",
    "prediction": "predicted outputs are not offered",
    "web_search_options": "web search is not offered",
    "reasoning_effort": "the catalogue's models have no reasoning-effort setting",
}


class ChatCompletionRequest(BaseModel):
    """OpenAI chat completions. Every documented parameter is known: the sampling ones reach the engine; those a
    tutor cannot honour (``n`` > 1, tools, audio, ...) are refused with a 400 that says so."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="'auto' lets the router choose; or a name from GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=64)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    n: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = Field(default=None, description="Token id → bias in [-100, 100].")
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    user: str | None = Field(default=None, max_length=256)
    store: bool | None = Field(default=None, description="Only false: completions are not stored for clients.")
    metadata: dict[str, str] | None = Field(default=None, description="Accepted; tags nothing here (no storage).")
    service_tier: Literal["auto", "default"] | None = None
    parallel_tool_calls: bool | None = None
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    audio: Any = None
    modalities: Any = None
    prediction: Any = None
    web_search_options: Any = None
    reasoning_effort: Any = None
    # tutor-cluster extensions (openai SDK: extra_body={...})
    exercise_id: str | None = Field(default=None, pattern=ID_PATTERN, description="Extension: exercise being answered.")
    mode: Literal["practice", "explain"] = Field(default="explain", description="Extension: pedagogy mode.")

    @field_validator(*UNSUPPORTED_PARAMS)
    @classmethod
    def _not_offered(cls, v: Any, info: ValidationInfo) -> Any:
        name = str(info.field_name)
        harmless = v in (None, [], {}) or (name, v) in (("modalities", ["text"]), ("tool_choice", "none"))
        if not harmless:
            raise ValueError(f"{UNSUPPORTED}{UNSUPPORTED_PARAMS[name]}")
        return v

    @field_validator("n")
    @classmethod
    def _one_choice(cls, v: int | None) -> int | None:
        if v is not None and v > 1:
            raise ValueError(f"{UNSUPPORTED}n > 1: a tutor answers with one choice; send n=1 or leave it out")
        return v

    @field_validator("store")
    @classmethod
    def _not_stored(cls, v: bool | None) -> bool | None:
        if v:
            raise ValueError(f"{UNSUPPORTED}store=true: completions are not stored for clients")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (v or {}).items():
            if not token.isdigit():
                raise ValueError(f"keys are token ids (digits), got {token!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"bias for token {token} must be in [-100, 100], got {bias}")
        return v

    @field_validator("top_logprobs")
    @classmethod
    def _needs_logprobs(cls, v: int | None, info: ValidationInfo) -> int | None:
        if v is not None and not info.data.get("logprobs"):
            raise ValueError("top_logprobs needs logprobs: true")
        return v

    @field_validator("messages")
    @classmethod
    def _last_is_user(cls, v: list[ChatMessage]) -> list[ChatMessage]:
        if v[-1].role != "user":
            raise ValueError("the last message must have role 'user'")
        if not v[-1].text().strip():
            raise ValueError("the last user message must not be empty")
        if sum(len(m.text()) for m in v) > MAX_MESSAGE_CHARS * 4:
            raise ValueError(f"messages are longer than {MAX_MESSAGE_CHARS * 4} characters in all")
        return v


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "tutor-cluster"
    tier: str | None = None
    context_length: int | None = None
    price_per_1k_input: float | None = None
    price_per_1k_output: float | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


