"""Requests for another region's learner. No region serves another's learners from its own data: the gateway
either refuses (421 ``wrong_region``, naming the home region) or — when this region's ``foreign_learners`` is
``forward`` and the home region lists this one in ``processing_regions`` — passes the request unchanged, with the
caller's own credentials, to the home region's gateway, which authenticates and serves it as if called directly.
A forwarded request is never forwarded again."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from tutor_cluster.api.errors import error_response
from tutor_cluster.config.settings import Settings
from tutor_cluster.errors import WrongRegion

#: Set on a request a gateway forwards (the region it came through); a request carrying it is never forwarded.
FORWARDED_FROM = "x-tutor-forwarded-from"
#: On every gateway response: the region whose gateway answered.
REGION_HEADER = "x-tutor-region"
#: On a refusal: where the learner's requests go.
HOME_HEADER = "x-tutor-home-region"
#: Seconds to wait for the home region's gateway to accept a connection.
CONNECT_TIMEOUT_S = 5.0
#: Seconds the forwarder waits beyond the home region's own deadline, so the home region's answer (a 504 too)
#: arrives rather than this region's guess.
DEADLINE_MARGIN_S = 5.0
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade", "host", "content-length", "expect"})
#: Headers of the home region's answer this gateway sets itself (its own proxy's, its own rate limits).
_OWN = frozenset({"date", "server"})
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)  # the request never reached home
log = logging.getLogger(f"ray.serve.{__name__}")


class RegionForwarder:
    """Refuses or forwards what :class:`~tutor_cluster.errors.WrongRegion` stopped. ``transport``: how the home
    region is reached (default: HTTP to ``regions.<home>.url``; tests give an in-process ASGI transport)."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.region = settings.privacy.region
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def refusal(self, exc: WrongRegion, request: Request) -> str | None:
        """Why this request is refused rather than forwarded (None: forward it)."""
        if self.settings.region().foreign_learners != "forward":
            return "this region refuses requests for other regions' learners"
        if request.headers.get(FORWARDED_FROM):
            return "it was forwarded here already"
        if self.region not in self.settings.region(exc.home).processing_regions:
            return f"region {exc.home!r} does not let region {self.region!r} process its learners' requests"
        return None

    async def handle(self, request: Request, exc: WrongRegion) -> Response:
        reason = self.refusal(exc, request)
        if reason is not None:
            url = self.settings.region(exc.home).url  # only a configured (public) one is worth telling
            where = f" ({url})" if url else ""
            response: Response = error_response(
                request.url.path, 421, "wrong_region", f"{exc.message}{where}; not forwarded: {reason}",
                exc.field, "wrong_region")
            response.headers[HOME_HEADER] = exc.home
            return response
        return await self.forward(request, exc.home)

    async def forward(self, request: Request, home: str) -> Response:
        """The home region's answer, streamed back as it comes (status, headers and body unchanged)."""
        scope = request.scope
        path, root = scope.get("path", "/"), scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):] or "/"
        url = self.settings.region_url(home).rstrip("/") + path
        named = {h.strip().lower() for v in request.headers.getlist("connection") for h in v.split(",")}
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP | named]
        headers.append((FORWARDED_FROM, self.region))
        body: bytes = scope.get("state", {}).get("body", b"")
        client = self._http()
        outgoing = client.build_request(request.method, url, params=request.url.query or None, headers=headers,
                                        content=body or None)
        try:
            answer = await client.send(outgoing, stream=True)
        except _NOT_SENT as exc:
            failed = error_response(request.url.path, 503, "region_unavailable", f"region {home!r} could not be "
                                    f"reached ({type(exc).__name__}); nothing was applied; retry shortly")
            failed.headers["Retry-After"] = "2"
            return failed
        except httpx.HTTPError as exc:  # sent: the home region may have applied it
            return error_response(request.url.path, 504, "region_timeout", f"region {home!r} did not answer "
                                  f"({type(exc).__name__}); the request may have been applied there: retry with the "
                                  "same turn_id or Idempotency-Key")
        response = _Relayed(answer, home)
        named = {h.strip().lower().encode() for v in answer.headers.get_list("connection") for h in v.split(",")}
        response.raw_headers = [  # as the home region sent them (repeated ones too), but for this proxy's own
            (k, v) for k, v in answer.headers.raw
            if k.decode("latin-1").lower() not in _HOP_BY_HOP | _OWN and k.lower() not in named
            and not k.lower().startswith(b"x-ratelimit-")]
        return response

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # made in the event loop that uses it
            timeout = httpx.Timeout(self.settings.server.request_timeout_s + DEADLINE_MARGIN_S,
                                    connect=CONNECT_TIMEOUT_S)
            self._client = httpx.AsyncClient(transport=self._transport, timeout=timeout, follow_redirects=False)
        return self._client


class _Relayed(StreamingResponse):
    """The home region's answer, relayed as it comes. Its connection is closed however the relay ends: done, the
    client gone (even before the first byte), or the home region failing mid-answer — which is re-raised, so the
    client's connection drops instead of a short body that looks complete."""

    def __init__(self, answer: httpx.Response, home: str) -> None:
        self._answer, self._home = answer, home
        super().__init__(self._chunks(), status_code=answer.status_code)

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._answer.aiter_raw():
                yield chunk
        except httpx.HTTPError as exc:
            log.warning("region %s failed mid-answer: %s: %s", self._home, type(exc).__name__, exc)
            raise

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._answer.aclose()


def install_region_handler(app: FastAPI, forwarder: RegionForwarder) -> None:
    """Route :class:`WrongRegion` to ``forwarder`` (more specific than the domain-error handler)."""

    @app.exception_handler(WrongRegion)
    async def _wrong_region(request: Request, exc: WrongRegion) -> Response:
        return await forwarder.handle(request, exc)
