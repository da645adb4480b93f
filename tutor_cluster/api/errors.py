"""Error responses of API v1: one JSON shape, ``{"error": {"type", "message", "field"?}}``, for every failure."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tutor_cluster.api.protocol import error_body

#: Seconds a client should wait before retrying when learner memory is unavailable.
MEMORY_RETRY_AFTER_S = 2


class ApiError(Exception):
    def __init__(self, status: int, type_: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.type, self.message, self.field = status, type_, message, field
        self.headers = headers or {}


def field_path(loc: tuple[Any, ...]) -> str:
    """pydantic/FastAPI error location → dotted field path (``messages[0].role``), without body/path/query."""
    parts = list(loc[1:]) if loc and loc[0] in ("body", "path", "query", "header") else list(loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def error_response(status: int, type_: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(type_, message, field), status_code=status)


def install_error_handlers(app: FastAPI, request_timeout_s: float) -> None:
    """Every failure answers in the one error shape; a client's mistake is never a 500."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        response = error_response(exc.status, exc.type, exc.message, exc.field)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        field = field_path(tuple(err.get("loc", ())))
        if err.get("type") == "json_invalid":
            return error_response(400, "invalid_json", f"body is not valid JSON: {err.get('msg')}", "body")
        if err.get("type") == "missing" and field == "body":
            return error_response(400, "invalid_request", "a JSON body is required", "body")
        if err.get("type") == "extra_forbidden":
            return error_response(422, "invalid_request", f"unknown field {field!r}", field)
        if err.get("type") == "model_attributes_type":
            return error_response(422, "invalid_request", "body must be a JSON object", "body")
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        return error_response(422, "invalid_request", f"{field}: {msg}", field)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI's own body parsing failure (e.g. invalid UTF-8)
            return error_response(400, "invalid_body", "body could not be decoded: send UTF-8 JSON", "body")
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, kind, str(exc.detail))

    @app.exception_handler(TimeoutError)
    async def _timeout(_: Request, exc: TimeoutError) -> JSONResponse:
        return error_response(504, "timeout", f"no answer within {request_timeout_s} s")
