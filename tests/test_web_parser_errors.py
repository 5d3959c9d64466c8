"""Requests aiohttp's HTTP parser refuses, sent as raw bytes to the service's Faust web
driver on 127.0.0.1 (no Kafka): each gets the service's JSON error with the status HTTP
has for it, the connection is closed, and the server goes on answering."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from streams.faust_ext.app_transport import MotApp
from streams.faust_ext.http_errors import refusal
from streams.web_auth import json_errors_middleware
from tests.harness import free_port
from tests.harness import raw_http as raw

OK = b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
CASES: dict[str, tuple[bytes, int, str]] = {
    "a header line over 8190 bytes": (
        b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"z" * 20000 + b"\r\n\r\n",
        431, "header_too_large"),
    "a long header name": (
        b"GET /ping HTTP/1.1\r\nHost: x\r\n" + b"X" * 9000 + b": v\r\n\r\n",
        431, "header_too_large"),
    "more than 128 headers": (
        b"GET /ping HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(300)) + b"\r\n",
        431, "too_many_headers"),
    "a request target over 8 KiB": (
        b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    "a bad method": (b"G@T /ping HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_method"),
    "not HTTP at all": (b"hello there\r\n\r\n", 400, "bad_method"),
    "TLS on the plain port": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\0" * 64,
                              400, "bad_method"),
    "a malformed request line": (b"GET /ping HTTP/9.x\r\nHost: x\r\n\r\n", 400,
                                 "bad_request_line"),
    "a malformed header": (b"GET /ping HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
                           400, "bad_request"),
}


@pytest.fixture
async def server() -> AsyncIterator[int]:
    """The service's app class with the service's middleware and two pages, served by
    its Faust web driver on a free loopback port."""
    port = free_port()
    app = MotApp("test-parser-errors", web_bind="127.0.0.1", web_port=port,
                 autodiscover=False,
                 web_application_options={"middlewares": [json_errors_middleware()]})

    @app.page("/ping")
    async def ping(web: Any, request: Any) -> Any:
        return web.json({"ok": True})

    @app.page("/boom")
    async def boom(web: Any, request: Any) -> Any:
        raise RuntimeError("a page that fails")

    app.web.init_server()
    await asyncio.wait_for(app.web.start_server(), 10)
    try:
        yield port
    finally:
        await asyncio.wait_for(app.web.stop_server(), 10)


@pytest.mark.parametrize("case", list(CASES))
async def test_a_request_the_parser_refuses_gets_a_json_4xx(
        server: int, case: str, caplog: pytest.LogCaptureFixture) -> None:
    request, want, error = CASES[case]
    with caplog.at_level(logging.DEBUG):
        status, headers, body = await asyncio.to_thread(raw, server, request)
        await asyncio.sleep(0.05)
    refused = [r for r in caplog.records if "refused a request" in r.getMessage()]
    assert [r.levelno for r in refused] == [logging.WARNING], "one warning per refusal"
    assert error in refused[0].getMessage() and refused[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not any(b in r.getMessage() for r in caplog.records for b in ("zzz", "uuu", "vvv"))
    assert status == want, (case, body[:200])
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    answer = orjson.loads(body)
    assert set(answer) == {"error", "detail"} and answer["error"] == error
    assert b"zzz" not in body and b"uuu" not in body, "the request is not echoed back"
    status, _, body = await asyncio.to_thread(raw, server, OK)
    assert (status, orjson.loads(body)) == (200, {"ok": True}), "the server still answers"


async def test_the_refusals_leave_the_server_answering_many_requests(server: int) -> None:
    requests = [r for r, _, _ in CASES.values()] * 5
    answers = await asyncio.gather(*(asyncio.to_thread(raw, server, r) for r in requests))
    assert all(400 <= s < 500 and orjson.loads(b)["error"] for s, _, b in answers)
    answers = await asyncio.gather(*(asyncio.to_thread(raw, server, OK) for _ in range(20)))
    assert {s for s, _, _ in answers} == {200}


async def test_a_page_that_raises_is_a_json_500(server: int) -> None:
    status, headers, body = await asyncio.to_thread(
        raw, server, b"GET /boom HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 500 and headers["Content-Type"].startswith("application/json")
    assert orjson.loads(body)["error"] == "internal_error"
    assert b"a page that fails" not in body


def test_unknown_statuses_are_named_after_their_phrase() -> None:
    assert refusal(504, None) == (504, "gateway_timeout", "Gateway Timeout")
    assert refusal(599, None) == (599, "error", "error")
