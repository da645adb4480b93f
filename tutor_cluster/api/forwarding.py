"""Requests for another region's learner. No region serves another's learners from its own data: the gateway
either refuses (421 ``wrong_region``, naming the home region) or — when this region's ``foreign_learners`` is
``forward`` and the home region lists this one in ``processing_regions`` — passes the request unchanged, with the
caller's own credentials, to the home region's gateway, which authenticates and serves it as if called directly.
A forwarded request is never forwarded again."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from tutor_cluster.api.errors import ApiError, error_response
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
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade", "host", "content-length"})


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
            url = self.settings.region_url(exc.home)
            response: Response = error_response(
                request.url.path, 421, "wrong_region", f"{exc.message} ({url}); not forwarded: {reason}",
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
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP]
        headers.append((FORWARDED_FROM, self.region))
        body: bytes = scope.get("state", {}).get("body", b"")
        client = self._http()
        outgoing = client.build_request(request.method, url, params=request.url.query or None, headers=headers,
                                        content=body or None)
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.HTTPError as exc:
            raise ApiError(503, "region_unavailable", f"region {home!r} did not answer ({type(exc).__name__}); the "
                           "request was not served here; retry shortly", None, {"Retry-After": "2"}) from None
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        return StreamingResponse(answer.aiter_raw(), status_code=answer.status_code, headers=kept,
                                 background=BackgroundTask(answer.aclose))

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # made in the event loop that uses it
            timeout = httpx.Timeout(self.settings.server.request_timeout_s, connect=CONNECT_TIMEOUT_S)
            self._client = httpx.AsyncClient(transport=self._transport, timeout=timeout, follow_redirects=False)
        return self._client


def install_region_handler(app: FastAPI, forwarder: RegionForwarder) -> None:
    """Route :class:`WrongRegion` to ``forwarder`` (more specific than the domain-error handler)."""

    @app.exception_handler(WrongRegion)
    async def _wrong_region(request: Request, exc: WrongRegion) -> Response:
        return await forwarder.handle(request, exc)
