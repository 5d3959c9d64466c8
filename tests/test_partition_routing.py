"""Routing of ``GET /customers/{id}`` to the partition's owner: every outcome a client can
see, including the failures, which are JSON 503s to retry and never a bare 500."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web as aioweb

from streams.partition_routing import ROUTED_HEADER, owner_url, route_by_partition
from streams.web_auth import TRUSTED
from tests.harness import free_port

TOPIC = "mot.touchpoints"
ME = "http://127.0.0.1:7001"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeWeb:
    """The two response constructors of Faust's web driver that the router uses."""

    def json(self, value: Any, *, status: int = 200, headers: Any = None) -> Answer:
        return Answer(status, value, dict(headers or {}))

    def bytes(self, value: bytes, *, status: int = 200, content_type: str = "") -> Answer:
        return Answer(status, orjson.loads(value), {"Content-Type": content_type})


def fake_app(distribution: dict[str, Any], partition: int | None, http: Any = None,
             rebalancing: bool = False) -> Any:
    return SimpleNamespace(
        conf=SimpleNamespace(canonical_url=ME),
        consumer=SimpleNamespace(key_partition=lambda topic, key: partition),
        assignor=SimpleNamespace(external_topics_metadata=lambda: distribution),
        rebalancing=rebalancing, in_recovery=False, http_client=http)


class FakeRequest(dict[str, Any]):
    """The parts of an aiohttp request the router reads (it is a mapping, like aiohttp's)."""

    def __init__(self, headers: dict[str, str], trusted: bool) -> None:
        super().__init__({TRUSTED: True} if trusted else {})
        self.headers = headers
        self.path = "/customers/alice"
        self.raw_path = "/customers/alice"


def request(headers: dict[str, str] | None = None, trusted: bool = True) -> Any:
    """A request as the page's guard let it through (``trusted``) or as anyone sends it."""
    return FakeRequest(headers or {}, trusted)


async def here() -> Answer:
    return Answer(200, {"served_by": ME})


async def route(app: Any, req: Any = None, headers: dict[str, str] | None = None) -> Answer:
    return await route_by_partition(app, FakeWeb(), req or request(), TOPIC, b"alice", here,
                                    timeout_s=2.0, headers=headers)


def test_owner_is_the_worker_assigned_the_partition() -> None:
    dist = {"http://a:1": {TOPIC: [0, 2], "other": [1]}, "http://b:1": {TOPIC: [1]}}
    assert owner_url(dist, TOPIC, 2) == "http://a:1"
    assert owner_url(dist, TOPIC, 1) == "http://b:1"
    assert owner_url(dist, TOPIC, 3) is None


async def test_the_owner_answers_itself() -> None:
    assert (await route(fake_app({ME + "/": {TOPIC: [4]}}, 4))).body == {"served_by": ME}


@pytest.mark.parametrize(("dist", "partition", "rebalancing", "reason"), [
    ({ME: {TOPIC: [0]}}, None, False, "unavailable"),   # topic metadata not known yet
    ({"http://b:1": {TOPIC: [1]}}, 0, False, "unavailable"),  # partition unassigned
    ({ME: {TOPIC: [0]}}, 0, True, "recovering"),        # owner restoring its tables
])
async def test_no_answer_yet_is_a_json_503_to_retry(
    dist: dict[str, Any], partition: int | None, rebalancing: bool, reason: str
) -> None:
    answer = await route(fake_app(dist, partition, rebalancing=rebalancing))
    assert answer.status == 503 and answer.headers["Retry-After"] == "1"
    assert answer.body["error"] == reason


async def test_a_forwarded_request_is_never_forwarded_again() -> None:
    app = fake_app({"http://127.0.0.1:9": {TOPIC: [0]}}, 0)
    answer = await route(app, request({ROUTED_HEADER: "http://127.0.0.1:7002"}))
    assert answer.status == 503 and answer.body["error"] == "rebalancing"


async def test_an_unreachable_owner_is_a_json_503() -> None:
    owner = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with aiohttp.ClientSession() as http:
        answer = await route(fake_app({owner: {TOPIC: [0]}}, 0, http))
    assert answer.status == 503
    assert answer.body == {"error": "owner_unreachable", "partition": 0, "owner": owner,
                           "detail": "the worker that owns the partition did not answer"}


async def owner_server(seen: list[tuple[str | None, str | None]]) -> tuple[Any, str]:
    """A stand-in owner answering 404 for alice, noting the headers it was sent."""

    async def owner_page(req: aioweb.Request) -> aioweb.Response:
        seen.append((req.headers.get(ROUTED_HEADER), req.headers.get("Authorization")))
        return aioweb.json_response({"error": "not_found", "customer_id": "alice"}, status=404)

    server = aioweb.Application()
    server.router.add_get("/customers/alice", owner_page)
    runner = aioweb.AppRunner(server)
    await runner.setup()
    port = free_port()
    await aioweb.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def test_a_routed_mark_from_an_untrusted_request_is_ignored() -> None:
    seen: list[tuple[str | None, str | None]] = []
    runner, owner = await owner_server(seen)
    try:
        async with aiohttp.ClientSession() as http:
            answer = await route(fake_app({owner: {TOPIC: [0]}}, 0, http),
                                 request({ROUTED_HEADER: "http://evil:1"}, trusted=False))
    finally:
        await runner.cleanup()
    assert answer.status == 404, "forwarded as any request, not refused as a second hop"
    assert seen == [(ME, None)]


async def test_a_forwarded_request_carries_the_workers_token() -> None:
    seen: list[tuple[str | None, str | None]] = []
    runner, owner = await owner_server(seen)
    try:
        async with aiohttp.ClientSession() as http:
            answer = await route(fake_app({owner: {TOPIC: [0]}}, 0, http),
                                 headers={"Authorization": "Bearer s3cret"})
    finally:
        await runner.cleanup()
    assert answer.status == 404
    assert seen == [(ME, "Bearer s3cret")]


async def test_the_owner_answer_is_relayed_with_its_status() -> None:
    seen: list[str | None] = []

    async def owner_page(req: aioweb.Request) -> aioweb.Response:
        seen.append(req.headers.get(ROUTED_HEADER))
        return aioweb.json_response({"error": "not_found", "customer_id": "alice"}, status=404)

    server = aioweb.Application()
    server.router.add_get("/customers/alice", owner_page)
    runner = aioweb.AppRunner(server)
    await runner.setup()
    port = free_port()
    await aioweb.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            answer = await route(fake_app({f"http://127.0.0.1:{port}": {TOPIC: [0]}}, 0, http))
    finally:
        await runner.cleanup()
    assert answer.status == 404
    assert answer.body == {"error": "not_found", "customer_id": "alice"}
    assert answer.headers["Content-Type"] == "application/json"
    assert seen == [ME], "the owner is told who forwarded the request"
