"""Bearer-token access to the worker's web pages, and the limits on what a request may ask.

Customer pages return personal data and ``/touchpoints`` operational data, and a deployed
worker listens beyond loopback, so every page registered with :func:`page` needs
``Authorization: Bearer <token>`` unless it opts out (``public=True``: ``/health``) or
has a guard of its own (``/metrics``). The check runs before the handler, so a refused
request learns nothing about what it asked for (not even whether a customer exists).

Tokens come from a file (a mounted Kubernetes/Docker secret, re-read when its size or
mtime changes, looked at no more than once a second) or a literal for local use. A file
may hold several tokens, one a line: all are accepted and the first is the one a worker
sends when it forwards a request to another, so a token is rotated without a moment
where two workers disagree (docs/security.md).
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

REALM = "mot"
CHALLENGE = {"WWW-Authenticate": f'Bearer realm="{REALM}"'}
#: Set on a request the guard let through: code acting on headers only a worker sends
#: (``X-Mot-Routed-From``) trusts them only on such a request.
TRUSTED = "mot_trusted"


def parse_tokens(text: str) -> tuple[str, ...]:
    """Tokens of a token file: one a line, blank lines and surrounding spaces ignored."""
    return tuple(t for t in (line.strip() for line in text.splitlines()) if t)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


@dataclass
class TokenSource:
    """The tokens a page accepts: a file's lines (kept current) and/or a literal.

    A file that becomes unreadable or empty keeps the tokens last read from it (logged):
    a broken mount must not open the pages, nor lock the workers out of each other.
    """

    literal: str = ""
    path: str = ""
    check_interval_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _file_tokens: tuple[str, ...] = field(default=(), init=False)
    _stamp: tuple[int, int, int] | None = field(default=None, init=False)
    _checked_at: float | None = field(default=None, init=False)

    @property
    def configured(self) -> bool:
        return bool(self.literal or self.path)

    def tokens(self) -> tuple[str, ...]:
        """Current tokens, the file's first (the one sent when forwarding)."""
        if self.path:
            self._refresh()
        literal = (self.literal,) if self.literal else ()
        return self._file_tokens + literal

    def accepts(self, token: str | None) -> bool:
        """Constant-time comparison against every current token."""
        if token is None:
            return False
        given = token.encode()
        # compare with all of them, so the time taken does not tell which one matched
        return bool(sum(hmac.compare_digest(given, t.encode()) for t in self.tokens()))

    def _refresh(self) -> None:
        now = self.clock()
        if self._checked_at is not None and now - self._checked_at < self.check_interval_s:
            return
        self._checked_at = now
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp == self._stamp:
                return
            with open(self.path, encoding="utf-8") as f:
                tokens = parse_tokens(f.read())
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("token file %s unreadable (%s); keeping the tokens read before",
                        self.path, exc)
            return
        self._stamp = stamp
        if not tokens:
            log.warning("token file %s holds no token; keeping the tokens read before",
                        self.path)
            return
        if self._file_tokens and tokens != self._file_tokens:
            log.info("token file %s changed: %d token(s) accepted", self.path, len(tokens))
        self._file_tokens = tokens


def json_response(status: int, body: Mapping[str, Any],
                  headers: Mapping[str, str] | None = None) -> Any:
    """The service's JSON answer (``application/json; charset=utf-8``), as its errors use:
    ``{"error": <machine-readable>, "detail": <for a person>}``."""
    from aiohttp import web as aioweb

    return aioweb.Response(status=status, text=json.dumps(body),
                           content_type="application/json", headers=dict(headers or {}))


@dataclass
class Guard:
    """Who may call a page and how many may at once.

    ``sources``: a request is let through with a token any of them accepts; with no
    source configured (a worker bound to loopback only) everyone is. ``max_in_flight``
    bounds the requests the guarded pages work on at once; more are told to retry (429),
    so a flood of lookups cannot starve the agents of the event loop.
    """

    sources: tuple[TokenSource, ...]
    max_in_flight: int = 200
    in_flight: int = field(default=0, init=False)

    @property
    def open(self) -> bool:
        return not any(s.configured for s in self.sources)

    def allows(self, authorization: str | None) -> bool:
        if self.open:
            return True
        token = bearer(authorization)
        return any(s.accepts(token) for s in self.sources if s.configured)

    def outgoing_headers(self) -> dict[str, str]:
        """``Authorization`` for a request to another worker (its first token), if any."""
        for s in self.sources:
            tokens = s.tokens()
            if tokens:
                return {"Authorization": f"Bearer {tokens[0]}"}
        return {}

    def refusal(self, request: Any) -> Any | None:
        """A JSON 401 for a request without a valid token, else None (and marks it)."""
        if not self.allows(request.headers.get("Authorization")):
            return json_response(401, {"error": "unauthorized",
                               "detail": "a valid bearer token is required"}, CHALLENGE)
        request[TRUSTED] = True
        return None

    def guard(self, handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """Wrap a Faust page handler ``(web, request, **match_info)``."""

        @functools.wraps(handler)
        async def guarded(web: Any, request: Any, **kwargs: Any) -> Any:
            refused = self.refusal(request)
            if refused is not None:
                return refused
            if self.in_flight >= self.max_in_flight:
                return json_response(429, {"error": "busy",
                                   "detail": "too many requests at once; retry"},
                             {"Retry-After": "1"})
            self.in_flight += 1
            try:
                return await handler(web, request, **kwargs)
            finally:
                self.in_flight -= 1

        return guarded


def trusted(request: Any) -> bool:
    """Whether a guard let ``request`` through (so headers only workers send count)."""
    try:
        return bool(request.get(TRUSTED, False))
    except AttributeError:
        return False


def json_errors_middleware() -> Any:
    """An aiohttp middleware answering the router's own errors (unknown path, wrong
    method) as JSON, like every page does, instead of aiohttp's plain text."""
    from aiohttp import web as aioweb

    @aioweb.middleware
    async def json_errors(request: Any, handler: Callable[[Any], Awaitable[Any]]) -> Any:
        try:
            return await handler(request)
        except aioweb.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items()
                       if k.lower() not in ("content-type", "content-length")}
            return json_response(exc.status, {"error": exc.reason.lower().replace(" ", "_"),
                                      "detail": exc.reason}, headers)

    return json_errors
