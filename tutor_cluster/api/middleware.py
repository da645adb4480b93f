"""ASGI middleware that runs before any route: authentication, scopes, rate limits and the body-size limit.

Doing this before FastAPI parses anything means an unauthenticated or oversized request is answered
at once (401/403/413) and reaches no tier.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any, Awaitable, Callable

from tutor_cluster.api.auth import Authenticator, AuthError
from tutor_cluster.api.protocol import render_error
from tutor_cluster.api.ratelimit import RateLimiter
from tutor_cluster.config.auth import Scope

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]

PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})


#: The API's description: readable with any valid key, whatever its scopes.
DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect"})


def scope_for(path: str) -> Scope | None:
    """The scope a route needs; None: any valid key."""
    if path in DOC_PATHS:
        return None
    if path.startswith(("/v1/tutor", "/v1/learners", "/v1/curriculum", "/v1/classes", "/v1/guardians")):
        return "tutor"
    if path.startswith("/v1/chat") or path.startswith("/v1/models"):
        return "chat"
    return "admin"  # everything else (future admin routes)


async def send_error(send: Send, path: str, status: int, type_: str, message: str, field: str | None = None,
                     code: str | None = None, headers: list[tuple[bytes, bytes]] = ()) -> None:
    """An error before any route ran, in the shape of the route family ``path`` belongs to."""
    status, body = render_error(path, status, type_, message, field, code)
    await send_json(send, status, body, headers)


async def send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": payload})


def _adding_headers(send: Send, extra: list[tuple[bytes, bytes]], unless: bytes | None = None) -> Send:
    """``send`` adding ``extra`` to the response's headers (none when it already has header ``unless``)."""
    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            if unless is None or all(k.lower() != unless for k, _ in headers):
                message = {**message, "headers": [*headers, *extra]}
        await send(message)

    return wrapped


class GatewayMiddleware:
    def __init__(self, app: ASGIApp, *, authenticator: Authenticator, max_body_bytes: int,
                 limiter: RateLimiter | None = None, region: str | None = None) -> None:
        self.app = app
        self._region = [(b"x-tutor-region", region.encode())] if region else []
        self.auth = authenticator
        self.max_body = max_body_bytes
        self.limiter = limiter if limiter is not None and limiter.enabled else None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._region:  # which region answered: on every response, refusals included (a forwarded answer
            send = _adding_headers(send, self._region, unless=b"x-tutor-region")  # keeps its home region's)
        path = scope.get("path", "")
        # Strip the Serve route prefix if any (root_path), so rules see /v1/...
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        if path in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            principal = self.auth.authenticate(headers.get("authorization"), scope_for(path))
        except AuthError as exc:
            kind, code = ("unauthorized", "invalid_api_key") if exc.status == 401 else ("forbidden", "insufficient_scope")
            extra = [(b"www-authenticate", b'Bearer realm="tutor-cluster"')] if exc.status == 401 else []
            await send_error(send, path, exc.status, kind, exc.message, "Authorization", code, extra)
            return
        scope.setdefault("state", {})["principal"] = principal
        if self.limiter is not None and self.limiter.applies(principal.key_id):  # off the event loop: the bucket store is a file or a Redis round trip
            verdict = await asyncio.to_thread(self.limiter.check, principal.key_id, principal.tenant)
            if verdict is not None and not verdict.allowed:
                await send_error(send, path, 429, "rate_limited",
                                 f"more than {verdict.limit} requests per minute for this key or its tenant; retry "
                                 f"in {max(1, math.ceil(verdict.retry_after_s))} s", None, "rate_limited",
                                 verdict.headers())
                return
            if verdict is not None:
                send = _adding_headers(send, verdict.headers())
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            ctype = headers.get("content-type", "application/json").split(";")[0].strip().lower()
            if ctype != "application/json" and not ctype.endswith("+json"):
                await send_error(send, path, 415, "unsupported_media_type",
                                 f"send JSON with 'Content-Type: application/json' (got {ctype!r})", "Content-Type")
                return
            declared = headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body:
                await self._too_large(send, path)
                return
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                body = message.get("body", b"")
                size += len(body)
                if size > self.max_body:
                    await self._too_large(send, path)
                    return
                chunks.append(body)
                if not message.get("more_body", False):
                    break
            buffered = b"".join(chunks)
            scope["state"]["body"] = buffered  # a request for another region's learner is forwarded as it came
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": buffered, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)

    async def _too_large(self, send: Send, path: str) -> None:
        await send_error(send, path, 413, "payload_too_large", f"request body is larger than {self.max_body} bytes",
                         "body")
