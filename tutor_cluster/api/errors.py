"""Error responses of API v1, mapped in one place: our routes answer ``{"error": {"type", "message", "field"?,
"code"}}``; the OpenAI-compatible routes answer OpenAI's ``{"error": {"message", "type", "param", "code"}}`` with
400 (not 422) for an invalid request. Domain errors (``tutor_cluster.errors``) get their status from
:data:`STATUS_OF`, the only place a tier's failure becomes an HTTP status."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tutor_cluster.api.protocol import UNSUPPORTED, render_error
from tutor_cluster.errors import (
    BudgetExhausted,
    Forbidden,
    InvalidInput,
    NotFound,
    Rejected,
    TutorError,
    Unavailable,
    WrongRegion,
)

#: HTTP status of each domain error (the most specific class that matches wins).
STATUS_OF: dict[type[TutorError], int] = {
    NotFound: 404, InvalidInput: 422, Rejected: 400, Forbidden: 403, BudgetExhausted: 429, Unavailable: 503,
    WrongRegion: 421,
}


class ApiError(Exception):
    def __init__(self, status: int, type_: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.field = status, type_, message, field
        self.code = code or type_
        self.headers = headers or {}

    def body(self, path: str) -> dict[str, Any]:
        return render_error(path, self.status, self.type, self.message, self.field, self.code)[1]

    @classmethod
    def of(cls, exc: TutorError) -> "ApiError":
        """The HTTP error for a domain error: status from :data:`STATUS_OF`, ``Retry-After`` when it says when."""
        status = next((code for kind, code in STATUS_OF.items() if isinstance(exc, kind)), 500)
        headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s else {}
        return cls(status, exc.kind, exc.message, exc.field, headers, exc.code)


def field_path(loc: tuple[Any, ...]) -> str:
    """pydantic/FastAPI error location → dotted field path (``messages[0].role``), without body/path/query."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "path", "query", "header") else list(loc)
    # pydantic names the union member it tried ("str", "list[ContentPart]"): not a field of the request
    parts = [p for p in parts if not (isinstance(p, str) and (p in _UNION_TAGS or "[" in p))]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def error_response(path: str, status: int, type_: str, message: str, field: str | None = None,
                   code: str | None = None) -> JSONResponse:
    """The error response for a route: its family decides the shape (and 422 → 400 for OpenAI's)."""
    status, body = render_error(path, status, type_, message, field, code)
    return JSONResponse(body, status_code=status)


_UNION_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list"})

#: pydantic error types → our stable codes
_VALIDATION_CODES = {"missing": "missing_field", "extra_forbidden": "unknown_field", "json_invalid": "invalid_json",
                     "unsupported": "unsupported_parameter"}


def install_error_handlers(app: FastAPI, request_timeout_s: float) -> None:
    """Every failure answers in the one error shape; a client's mistake is never a 500."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = error_response(request.url.path, exc.status, exc.type, exc.message, exc.field, exc.code)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(TutorError)
    async def _domain_error(request: Request, exc: TutorError) -> JSONResponse:
        return await _api_error(request, ApiError.of(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        path = request.url.path
        errors = exc.errors()
        # a refused documented parameter says more than the union member pydantic happened to try first
        err = next((e for e in errors if str(e.get("msg", "")).removeprefix("Value error, ").startswith(UNSUPPORTED)),
                   errors[0])
        field = field_path(tuple(err.get("loc", ())))
        kind = str(err.get("type", ""))
        code = _VALIDATION_CODES.get(kind, "invalid_value")
        if kind == "json_invalid":
            return error_response(path, 400, "invalid_json", f"body is not valid JSON: {err.get('msg')}", "body", code)
        if kind == "missing" and field == "body":
            return error_response(path, 400, "invalid_request", "a JSON body is required", "body", code)
        if kind == "extra_forbidden":
            return error_response(path, 422, "invalid_request", f"unknown field {field!r}", field, code)
        if kind == "model_attributes_type":
            return error_response(path, 422, "invalid_request", "body must be a JSON object", "body", code)
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if msg.startswith(UNSUPPORTED):
            reason = msg.removeprefix(UNSUPPORTED)
            return error_response(path, 422, "invalid_request", f"{field} is not supported: {reason}", field,
                                  "unsupported_parameter")
        return error_response(path, 422, "invalid_request", f"{field}: {msg}", field, code)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's own body parsing failure (e.g. invalid UTF-8)
            return error_response(request.url.path, 400, "invalid_body",
                                  "body could not be decoded: send UTF-8 JSON", "body")
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(request.url.path, exc.status_code, kind, str(exc.detail))

    @app.exception_handler(TimeoutError)
    async def _timeout(request: Request, exc: TimeoutError) -> JSONResponse:
        return error_response(request.url.path, 504, "timeout", f"no answer within {request_timeout_s} s")
