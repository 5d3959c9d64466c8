"""Faust's aiohttp web driver, with the requests aiohttp's HTTP parser refuses answered in
JSON like every other error of the service.

Changes: ``aiohttp.web_protocol.RequestHandler.handle_error`` (overridden in
:class:`JsonErrorRequestHandler`); ``aiohttp.web.Server.__call__`` (builds that handler
class; reads the server's private ``_loop`` and ``_kwargs``); the private
``aiohttp.web.AppRunner._make_server`` (rebuilds the server aiohttp made as a
:class:`JsonErrorServer`, reading its private ``_kwargs``); Faust's aiohttp ``Web``
(replaces its private ``_runner`` with a :class:`JsonErrorAppRunner`). ``MotApp._new_web``
(``app_transport``) builds :class:`JsonErrorWeb`.

Why: a request whose request line or header block the parser refuses (a header over 8190
bytes, more than 128 headers, a request target over 8 KiB, a malformed request line, a bad
method) never reaches the application. aiohttp answers it from ``handle_error`` with a
``text/plain`` 400 before any route or middleware runs, so ``json_errors_middleware``
(``streams.web_auth``) cannot see it. Here the same refusal is a JSON ``{"error",
"detail"}`` with the status HTTP has for it (431 header fields too large, 414 request
target too long, else 400); the connection is closed as aiohttp does. A refusal is
logged as one WARNING line naming its ``error`` (aiohttp logs an ERROR with a traceback
quoting the request's bytes); a handler's failure keeps aiohttp's ERROR with the
traceback. A handler that raises (500) or times out (504) is answered in JSON too.
The detail never echoes the request's bytes back.

The parser says "line too long" for the request target and for a header alike; the
limit it names tells them apart, so the request target's limit (8192) is kept two bytes
above the header field's (8190, aiohttp's default for both).

Upstream candidates: aio-libs/aiohttp#3287 (custom handling of the requests the parser
refuses) and #6463 (parser errors skip ``on_response_prepare`` and the middlewares; PR
#12890 was closed unmerged); for Faust, a setting for the aiohttp runner or request
handler class.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``) and aiohttp 3.14.5
(``CHECKED_AIOHTTP_VERSION``).
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    LineTooLong,
)
from aiohttp.web_protocol import RequestHandler
from faust.web.drivers import aiohttp as faust_aiohttp

from streams.web_auth import json_response

#: Bytes of a header field (name and value), aiohttp's default.
MAX_HEADER_FIELD_BYTES = 8190
#: Bytes of the request target; not the header field's limit, so that a refusal says
#: which was too long (a customer id is at most 128 characters anyway).
MAX_REQUEST_TARGET_BYTES = 8192
#: Headers a request may have, aiohttp's default.
MAX_HEADERS = 128
#: aiohttp's message for a request with more headers than ``max_headers`` (both parsers).
TOO_MANY_HEADERS = "Too many headers received"


def refusal(status: int, exc: BaseException | None,
            max_field_size: int = MAX_HEADER_FIELD_BYTES) -> tuple[int, str, str]:
    """Status, ``error`` and ``detail`` for what ``handle_error`` was given.

    ``status`` is aiohttp's (400 for every parser error, 500 or 504 for a handler).
    """
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == max_field_size:
            return (431, "header_too_large",
                    f"a header field is longer than {max_field_size} bytes")
        return 414, "uri_too_long", f"the request target is longer than {limit} bytes"
    if isinstance(exc, HttpProcessingError) and exc.message == TOO_MANY_HEADERS:
        return 431, "too_many_headers", "the request has too many header fields"
    if isinstance(exc, BadHttpMethod):
        return 400, "bad_method", "the request line's method is not an HTTP method"
    if isinstance(exc, BadStatusLine):
        return 400, "bad_request_line", "the request line is malformed"
    if isinstance(exc, InvalidHeader):
        return 400, "bad_header", "a header field is malformed"
    if isinstance(exc, HttpProcessingError) or status == 400:
        return 400, "bad_request", "the request is not valid HTTP/1.1"
    if status == 500:
        return 500, "internal_error", "the worker failed to answer; see its log"
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return status, phrase.lower().replace(" ", "_"), phrase


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler whose error answers are the service's JSON."""

    __slots__ = ()

    def handle_error(self, request: Any, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        code, error, detail = refusal(status, exc, self.max_field_size)
        if code >= 500:
            # a fault of the worker: aiohttp's own log line, with the traceback
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:
            # the client's fault, common from scanners: one line, no traceback, and none
            # of the request's bytes (aiohttp's message quotes up to 100 of them)
            self.logger.warning("refused a request from %s: %s (%d)",
                                request.remote, error, code)
        if request.writer.output_size > 0:  # part of a response is out: no second one
            raise ConnectionError("Response is sent already, cannot send another response "
                                  "with the error message")
        response = json_response(code, {"error": error, "detail": detail})
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    """aiohttp's low-level server whose connections are :class:`JsonErrorRequestHandler`."""

    def __call__(self) -> RequestHandler:
        limits = {"max_line_size": MAX_REQUEST_TARGET_BYTES,
                  "max_field_size": MAX_HEADER_FIELD_BYTES, "max_headers": MAX_HEADERS}
        return JsonErrorRequestHandler(self, loop=self._loop, **{**limits, **self._kwargs})


class JsonErrorAppRunner(web.AppRunner):
    """aiohttp's application runner serving through a :class:`JsonErrorServer`."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return JsonErrorServer(plain.request_handler, request_factory=plain.request_factory,
                               handler_cancellation=plain.handler_cancellation,
                               loop=asyncio.get_running_loop(), **plain._kwargs)


class JsonErrorWeb(faust_aiohttp.Web):
    """Faust's aiohttp web driver on a :class:`JsonErrorAppRunner`."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._runner = JsonErrorAppRunner(self.web_app, access_log=None)
