"""Access to the web pages of two workers on the real local Kafka broker, with a token
from a file: no token or a wrong one is a 401 that tells nothing about the customer, the
right one reads every customer on either worker (forwarded requests carry it), a new
token in the file is taken up within about a second, and hostile requests get a JSON 4xx
and leave the workers healthy."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.harness import (
    WorkerProcess,
    event_record,
    free_port,
    produce,
    raw_http,
    service_env,
)

pytestmark = pytest.mark.kafka
TOKEN = "tok-" + os.urandom(8).hex()
METRICS_TOKEN = "metrics-" + os.urandom(8).hex()
CUSTOMERS = [f"cust-{i:02d}" for i in range(8)]
BASE = int(time.time()) // 3600 * 3600 - 86400


def event(cid: str, i: int) -> dict[str, Any]:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(BASE + i * 60))
    return {"event_id": f"{cid}-{i}", "customer_id": cid, "occurred_at": at,
            "touchpoint": "web.search", "channel": "web", "csat": 4}


def write_token(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # as a secret mount swaps its files


@pytest.fixture(scope="module")
def setup(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("web-access")
    token_file = tmp / "web-token"
    write_token(token_file, TOKEN + "\n")
    metrics_token_file = tmp / "metrics-token"
    write_token(metrics_token_file, METRICS_TOKEN + "\n")
    env = service_env(kafka, tmp / "a", MOT_WEB_TOKEN_FILE=str(token_file),
                      MOT_WEB_MAX_IN_FLIGHT="200")
    started: list[WorkerProcess] = []
    try:
        # b also guards /metrics (MOT_METRICS_TOKEN_FILE); a leaves it open, the default
        for name, extra in (("a", {}), ("b", {"MOT_METRICS_TOKEN_FILE": str(metrics_token_file)})):
            w = WorkerProcess({**env, "MOT_DATA_DIR": str(tmp / name),
                               "MOT_WEB_PORT": str(free_port()), **extra}, tmp / f"{name}.log")
            started.append(w)
            w.start()
        yield {"workers": started, "token_file": token_file, "env": env}
    finally:
        for w in started:
            w.stop()


async def fetch(url: str, token: str | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """GET with an optional bearer token; the path is sent exactly as written."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with aiohttp.ClientSession() as http, http.get(
            aiohttp.client.URL(url, encoded=True), headers=sent,
            timeout=aiohttp.ClientTimeout(total=10)) as r:
        body = await r.read()
        return r.status, dict(r.headers), orjson.loads(body) if body else None


async def fetch_ready(url: str, token: str | None, retry_s: float = 30.0) -> tuple[int, Any]:
    """As a client would: retry a 503 (Retry-After) while partitions settle."""
    deadline = time.monotonic() + retry_s
    while True:
        status, _, body = await fetch(url, token)
        if status != 503 or time.monotonic() > deadline:
            return status, body
        await asyncio.sleep(0.5)


async def scored(setup: dict[str, Any]) -> list[WorkerProcess]:
    """The workers, once every customer's events are scored and readable on both."""
    workers = setup["workers"]
    await produce(setup["env"]["MOT_KAFKA_BOOTSTRAP_SERVERS"], setup["env"]["MOT_TOPIC_EVENTS"],
                  (event_record(event(c, i)) for c in CUSTOMERS for i in range(2)))
    deadline = time.monotonic() + 90
    for cid in CUSTOMERS:
        while True:
            status, body = await fetch_ready(f"{workers[0].base_url}/customers/{cid}", TOKEN)
            if status == 200 and body["moments"] == 2:
                break
            assert time.monotonic() < deadline, f"{cid} not scored: {status} {body}"
            await asyncio.sleep(0.5)
    return workers


async def test_the_data_pages_need_the_token_and_routing_carries_it(
    setup: dict[str, Any],
) -> None:
    workers = await scored(setup)
    refused = None
    for w in workers:
        for path in ("/customers/cust-00", "/customers/nobody", "/customers/" + "x" * 500,
                     "/touchpoints"):
            for token in (None, "wrong", TOKEN + "x", ""):
                status, headers, body = await fetch(w.base_url + path, token)
                assert status == 401, (w.base_url, path, token)
                assert headers["WWW-Authenticate"] == 'Bearer realm="mot"'
                assert headers["Content-Type"].startswith("application/json")
                refused = refused or body
                assert body == refused, "the same answer, whether the customer exists or not"
        # a routed-from mark does not stand in for the token
        status, _, _ = await fetch(w.base_url + "/customers/cust-00",
                                   headers={"X-Mot-Routed-From": workers[1].base_url})
        assert status == 401
        # /health stays open; so does /metrics by default (a), unless guarded (b)
        assert (await fetch(w.base_url + "/health"))[0] == 200
        assert await metrics_status(workers[0], None) == 200
        assert await metrics_status(workers[1], None) == 401
        assert await metrics_status(workers[1], "wrong") == 401
        assert await metrics_status(workers[1], METRICS_TOKEN) == 200
        assert await metrics_status(workers[1], TOKEN) == 200, "the data token reads more"
        status, _, _ = await fetch(w.base_url + "/customers/cust-00", METRICS_TOKEN)
        assert status == 401, "the metrics token opens /metrics only"

    served_by: set[str] = set()
    for cid in CUSTOMERS:
        answers = [await fetch_ready(f"{w.base_url}/customers/{cid}", TOKEN) for w in workers]
        assert answers[0] == answers[1], cid
        status, body = answers[0]
        assert status == 200 and body["customer_id"] == cid and body["moments"] == 2
        served_by.add(body["served_by"])
    assert served_by == {w.base_url for w in workers}, \
        "each worker owns some customers, so half the answers above were forwarded"
    for w in workers:
        status, body = await fetch_ready(w.base_url + "/customers/nobody", TOKEN)
        assert status == 404 and body["error"] == "not_found"
        status, body = await fetch_ready(w.base_url + "/touchpoints", TOKEN)
        assert status == 200 and body["complete"] is True and body["workers"] == 2, \
            "the other worker answered the touchpoint query, with the token"


async def metrics_status(w: WorkerProcess, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http, http.get(w.base_url + "/metrics",
                                                         headers=headers) as r:
        text = await r.text()
        if r.status == 200:
            assert "mot_events_consumed_total" in text
        return r.status


def raw_request(port: int, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (no client normalising the path); the status and the body,
    which is the service's JSON whatever the status."""
    status, headers, body = raw_http(port, request)
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    assert content_type.startswith("application/json"), headers
    return status, body


async def test_hostile_requests_get_a_json_4xx_and_leave_the_workers_healthy(
    setup: dict[str, Any],
) -> None:
    workers = await scored(setup)
    auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
    for w in workers:
        port = int(w.env["MOT_WEB_PORT"])
        cases = {
            "/customers/" + "x" * 129: (400, "invalid_customer_id"),
            "/customers/" + "%C3%A9" * 200: (400, "invalid_customer_id"),
            "/customers/" + "y" * 7000: (400, "invalid_customer_id"),
            "/customers/%FF%FE": (400, "invalid_customer_id"),
            "/customers/..": (400, "invalid_customer_id"),
            "/customers/%2E%2E": (400, "invalid_customer_id"),
            "/customers/a/b": (404, "not_found"),          # no such page
            "/customers/": (404, "not_found"),
            "/customers/a%2Fb": (404, "not_found"),        # a customer "a/b", none scored
            "/customers/..%2Fhealth": (404, "not_found"),  # likewise "../health"
            "/nothing-here": (404, "not_found"),
        }
        for path, (want, error) in cases.items():
            status, body = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
                                       + auth + b"Connection: close\r\n\r\n")
            if status == 503:  # partitions settling: a client retries
                await asyncio.sleep(1)
                status, body = raw_request(port, f"GET {path} HTTP/1.1\r\nHost: x\r\n".encode()
                                           + auth + b"Connection: close\r\n\r\n")
            assert status == want, (path, status, body[:200])
            assert orjson.loads(body)["error"] == error, (path, body[:200])
        status, body = await fetch_ready(w.base_url + "/customers/a%2Fb", TOKEN)
        assert status == 404 and body["customer_id"] == "a/b", "forwarded still encoded"
        # a POST where only GET is served
        async with aiohttp.ClientSession() as http, http.post(
                w.base_url + "/nothing-here", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert 400 <= r.status < 500 and (await r.json())["error"]
        # refused by the HTTP parser before any page runs (a header line over 8190 bytes,
        # more than 128 headers, a bad method, a malformed request line): the same JSON
        # error as every page's, with the status HTTP has for it, and the worker answers on
        parser_cases = {
            b"X-Big: " + b"z" * 20000 + b"\r\n": (431, "header_too_large"),
            b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(300)):
                (431, "too_many_headers"),
        }
        for extra, (want, error) in parser_cases.items():
            status, body = raw_request(port, b"GET /customers/cust-00 HTTP/1.1\r\nHost: x\r\n"
                                       + auth + extra + b"Connection: close\r\n\r\n")
            assert status == want and orjson.loads(body)["error"] == error, (status, body)
            assert (await fetch(w.base_url + "/health"))[0] == 200
        for line, error in ((b"G@T /customers/cust-00 HTTP/1.1", "bad_method"),
                            (b"GET /customers/cust-00 HTTP/9.x", "bad_request_line")):
            status, body = raw_request(port, line + b"\r\nHost: x\r\n" + auth + b"\r\n")
            assert status == 400 and orjson.loads(body)["error"] == error, (line, body)
        assert (await fetch(w.base_url + "/health"))[0] == 200

    # many requests at once: each answered (or told to retry), none lost, workers fine
    async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def one(i: int) -> tuple[int, Any]:
            w = workers[i % 2]
            async with http.get(f"{w.base_url}/customers/{CUSTOMERS[i % len(CUSTOMERS)]}",
                                headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                return r.status, await r.json()

        answers = await asyncio.gather(*(one(i) for i in range(300)))
    statuses = {s for s, _ in answers}
    assert statuses <= {200, 429, 503}, statuses
    assert sum(s == 200 for s, _ in answers) >= 100
    for s, body in answers:
        if s == 200:
            assert body["moments"] == 2
        else:
            assert body["error"] in ("busy", "unavailable", "rebalancing", "recovering",
                                     "owner_unreachable")
    for w in workers:
        assert w.proc is not None and w.proc.poll() is None
        assert (await fetch(w.base_url + "/health"))[0] == 200
        status, body = await fetch_ready(w.base_url + "/customers/cust-01", TOKEN)
        assert status == 200


async def test_a_new_token_written_to_the_file_is_taken_up_by_both_workers(
    setup: dict[str, Any],
) -> None:
    workers = await scored(setup)
    token_file: Path = setup["token_file"]
    new = "tok-" + os.urandom(8).hex()

    async def accepted(token: str) -> bool:
        results = [(await fetch_ready(f"{w.base_url}/customers/{c}", token))[0]
                   for w in workers for c in CUSTOMERS]
        assert set(results) <= {200, 401}, results
        return set(results) == {200}

    async def until(check: Any, timeout: float = 5.0) -> float:
        start = time.monotonic()
        while not await check():
            assert time.monotonic() - start < timeout, "not taken up in time"
            await asyncio.sleep(0.2)
        return time.monotonic() - start

    assert not await accepted(new)
    write_token(token_file, f"{new}\n{TOKEN}\n")   # step 1: both accepted, the new one sent
    await until(lambda: accepted(new))
    assert await accepted(TOKEN), "the old token still works while clients move"
    write_token(token_file, f"{new}\n")            # step 2: the old one retired
    took = await until(lambda: _refused_everywhere(workers, TOKEN))
    assert took < 5.0
    assert await accepted(new), "forwarding between the workers uses the new token"


async def _refused_everywhere(workers: list[WorkerProcess], token: str) -> bool:
    for w in workers:
        if (await fetch(w.base_url + "/customers/cust-00", token))[0] != 401:
            return False
    return True
