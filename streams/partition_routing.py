"""Route an HTTP request to the worker that owns a key's partition of a source topic.

Faust's ``app.topic_route`` hashes the key with the *producer's* cluster metadata. The
producer only keeps metadata for the topics it has sent to once it has tracked any topic
explicitly, and it never sends to the input topic, so after such a refresh the lookup
fails with a ``TypeError`` and the page answers a bare ``500``. This router hashes with the
*consumer's* metadata (it is subscribed to the topic, so it always knows it), looks the
owner up in the group's assignment, forwards at most one hop, and answers every failure
as a JSON ``503`` the caller can retry.

A forwarded request carries the caller's ``headers`` (the worker's bearer token), and
the routed-from mark is honoured only on a request the page's guard let through
(``streams.web_auth.trusted``): from anyone else it means nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import aiohttp
from yarl import URL

from streams.web_auth import trusted

log = logging.getLogger(__name__)

#: Set on a forwarded request: its receiver never forwards it again, so two workers that
#: disagree about an assignment during a rebalance cannot ping-pong a request.
ROUTED_HEADER = "X-Mot-Routed-From"

Distribution = Mapping[str, Mapping[str, Sequence[int]]]


def owner_url(distribution: Distribution, topic: str, partition: int) -> str | None:
    """The URL of the worker assigned ``partition`` of ``topic``, or None if nobody is."""
    for url, topics in distribution.items():
        if partition in topics.get(topic, ()):
            return str(url)
    return None


def same_worker(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


async def route_by_partition(
    app: Any,
    web: Any,
    request: Any,
    topic: str,
    key: bytes,
    answer_here: Callable[[], Awaitable[Any]],
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """Answer with ``answer_here`` on the owner of ``key``'s partition; forward otherwise."""
    me = str(app.conf.canonical_url)
    partition = app.consumer.key_partition(topic, key)
    if partition is None:
        return _retry(web, "unavailable", "the topic's partitions are not known yet",
                      topic=topic)
    owner = owner_url(app.assignor.external_topics_metadata(), topic, partition)
    if owner is None:
        return _retry(web, "unavailable", "no worker owns the partition right now",
                      topic=topic, partition=partition)
    if same_worker(owner, me):
        if app.rebalancing or app.in_recovery:
            return _retry(web, "recovering", "the partition's state is being restored",
                          partition=partition, owner=me)
        return await answer_here()
    if trusted(request) and request.headers.get(ROUTED_HEADER):
        return _retry(web, "rebalancing", "the partition is moving between workers",
                      partition=partition, owner=owner)
    # the path as received, still encoded: ``%2F`` and dot segments are not re-normalised
    target = URL(f"{owner.rstrip('/')}{request.raw_path}", encoded=True)
    try:
        async with app.http_client.get(
            target, headers={**(headers or {}), ROUTED_HEADER: me},
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as response:
            return web.bytes(await response.read(), status=response.status,
                             content_type=response.content_type)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning("%s: partition %s owner %s did not answer (%s)",
                    request.path, partition, owner, type(exc).__name__)
        return _retry(web, "owner_unreachable",
                      "the worker that owns the partition did not answer",
                      partition=partition, owner=owner)


def _retry(web: Any, reason: str, detail: str, **context: Any) -> Any:
    """A JSON 503 saying why, for a client to retry."""
    return web.json({"error": reason, "detail": detail, **context}, status=503,
                    headers={"Retry-After": "1"})
