"""Bearer tokens on the data pages, the refusal to serve them beyond loopback without one,
and the ids the customer page rejects before any lookup."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings, SettingsError
from streams.web_auth import TRUSTED, Guard, TokenSource, bearer, parse_tokens
from tests.harness import REPO, free_port, service_env


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str) -> None:
    """Replace the file as a secret mount does (a new inode), so the change is visible
    even within the filesystem's mtime granularity."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def test_bearer_header_parsing() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None
    assert parse_tokens(" new \n\nold\n") == ("new", "old")


def test_a_literal_token_is_compared_exactly() -> None:
    source = TokenSource(literal="s3cret")
    assert source.accepts("s3cret")
    assert not source.accepts("s3cre")
    assert not source.accepts("s3cret ")
    assert not source.accepts(None)


def test_a_token_file_is_re_read_when_it_changes_at_most_once_a_second(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write(path, "old\n")
    clock = Clock()
    source = TokenSource(path=str(path), clock=clock)
    assert source.accepts("old") and not source.accepts("new")
    write(path, "new\nold\n")
    clock.now = 0.5
    assert not source.accepts("new"), "not looked at again within the second"
    clock.now = 1.0
    assert source.accepts("new") and source.accepts("old")
    assert source.tokens()[0] == "new", "the first line is the one sent to other workers"
    write(path, "new\n")
    clock.now = 2.0
    assert source.accepts("new") and not source.accepts("old")


def test_a_broken_token_file_keeps_the_tokens_read_before(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write(path, "tok\n")
    clock = Clock()
    source = TokenSource(path=str(path), clock=clock)
    assert source.accepts("tok")
    write(path, "\n")
    clock.now = 5.0
    assert source.accepts("tok"), "an emptied file neither opens the pages nor locks out"
    path.unlink()
    clock.now = 10.0
    assert source.accepts("tok") and not source.accepts("")


class _Req(dict[str, Any]):
    """The parts of an aiohttp request the guard reads (a mapping, like aiohttp's)."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__()
        self.headers = headers


async def test_the_guard_answers_401_json_with_a_bearer_challenge() -> None:
    calls: list[str] = []

    async def handler(web: Any, req: Any, **kw: Any) -> str:
        calls.append(kw["customer_id"])
        return "answered"

    guarded = Guard((TokenSource(literal="tok"),)).guard(handler)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "tok"}):
        response = await guarded(None, _Req(headers), customer_id="alice")
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="mot"'
        assert response.content_type == "application/json"
        assert json.loads(response.text) == {"error": "unauthorized",
                                             "detail": "a valid bearer token is required"}
    assert calls == [], "the handler is never reached without the token"
    req = _Req({"Authorization": "Bearer tok"})
    assert await guarded(None, req, customer_id="alice") == "answered"
    assert req[TRUSTED] is True and calls == ["alice"]


async def test_without_any_token_configured_the_guard_is_open() -> None:
    async def handler(web: Any, req: Any) -> str:
        return "answered"

    guard = Guard((TokenSource(),))
    assert guard.open and guard.outgoing_headers() == {}
    assert await guard.guard(handler)(None, _Req({})) == "answered"


async def test_requests_beyond_the_in_flight_bound_are_told_to_retry() -> None:
    release = asyncio.Event()

    async def slow(web: Any, req: Any) -> str:
        await release.wait()
        return "answered"

    guarded = Guard((TokenSource(),), max_in_flight=2).guard(slow)
    waiting = [asyncio.create_task(guarded(None, _Req({}))) for _ in range(2)]
    await asyncio.sleep(0)
    busy = await guarded(None, _Req({}))
    assert busy.status == 429 and busy.headers["Retry-After"] == "1"
    assert json.loads(busy.text)["error"] == "busy"
    release.set()
    assert await asyncio.gather(*waiting) == ["answered", "answered"]
    assert await guarded(None, _Req({})) == "answered", "the slots are given back"


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "10.1.2.3", "worker-1"])
def test_beyond_loopback_a_token_is_required(bind: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="set MOT_WEB_TOKEN_FILE"):
        Settings.from_env({"MOT_WEB_BIND": bind})
    assert Settings.from_env({"MOT_WEB_BIND": bind, "MOT_WEB_TOKEN": "t"}).web_token == "t"
    token = tmp_path / "token"
    token.write_text("t\n")
    Settings.from_env({"MOT_WEB_BIND": bind, "MOT_WEB_TOKEN_FILE": str(token)})


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.5", "::1", "[::1]", "localhost"])
def test_on_loopback_the_token_is_optional(bind: str) -> None:
    assert Settings.from_env({"MOT_WEB_BIND": bind}).web_token == ""


@pytest.mark.parametrize("name", ["MOT_WEB_TOKEN_FILE", "MOT_METRICS_TOKEN_FILE"])
def test_a_token_file_must_exist_and_hold_a_token(name: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: str(tmp_path / "empty")})
    with pytest.raises(SettingsError, match="MOT_WEB_MAX_IN_FLIGHT"):
        Settings.from_env({"MOT_WEB_MAX_IN_FLIGHT": "0"})


def test_a_worker_bound_beyond_loopback_without_a_token_refuses_to_start(
    tmp_path: Path,
) -> None:
    """The real entry point (``mot worker``): fails at the settings, before Kafka."""
    env = service_env(f"127.0.0.1:{free_port()}", tmp_path, MOT_WEB_BIND="0.0.0.0")
    proc = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "MOT_WEB_BIND='0.0.0.0'" in proc.stderr
    assert "set MOT_WEB_TOKEN_FILE" in proc.stderr and "MOT_WEB_TOKEN" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_page_is_registered_through_the_guarded_decorator() -> None:
    """A page added with ``app.page`` directly would skip the token check."""
    offenders = []
    for path in [*REPO.glob("streams/**/*.py"), *REPO.glob("agents/**/*.py")]:
        if re.search(r"\bapp\.page\(", path.read_text()) and path != REPO / "streams/web.py":
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_customer_ids_no_event_could_carry_are_rejected() -> None:
    from agents.customer_api import MAX_CUSTOMER_ID_CHARS, id_problem

    schema = json.loads((REPO / "schemas/touchpoint-event.v1.schema.json").read_text())
    assert schema["properties"]["customer_id"]["maxLength"] == MAX_CUSTOMER_ID_CHARS
    ok = ["/customers/alice", "/customers/" + "é" * 128, "/customers/%C3%A9",
          "/customers/a%2Fb", "/customers/%25FF", "/customers/" + "x" * 128 + "?q=1"]
    for path in ok:
        assert id_problem(path) is None, path
    assert id_problem("/customers/" + "x" * 129) == "longer than 128 characters"
    assert id_problem("/customers/" + "%C3%A9" * 129) == "longer than 128 characters"
    assert id_problem("/customers/" + "%" * 100_000) == "longer than 128 characters"
    assert id_problem("/customers/%FF%FE") == "not UTF-8"
    assert id_problem("/customers/%C3") == "not UTF-8"
    for path in ("/customers/..", "/customers/%2E%2E", "/customers/."):
        assert id_problem(path) == "a path segment, not an id", path
