"""Touchpoint andon: the organisation-level status of every touchpoint.

The scoring agent partitions by customer; a touchpoint's moments come from all of
them. So the scoring worker gathers its counted moments (event time, failed?, event
id) per touchpoint and sends each touchpoint's batch, keyed by touchpoint, to the
internal topic ``<app id>-touchpoint-observations`` every ``MOT_TOUCHPOINT_FLUSH_S``
or once it holds ``MOT_TOUCHPOINT_BATCH_MAX`` moments
(:mod:`agents.domain.touchpoint_observations`); the agent here keeps one state per
touchpoint in the ``touchpoint-status`` table (:mod:`agents.domain.touchpoint_status`),
judges a batch moment by moment and sends every status transition to
``MOT_TOPIC_ALERTS_TOUCHPOINT_STATUS``.

Under the delivery promise: every observation carries its input position and the andon
counts it once (:func:`agents.domain.touchpoint_status.judge_batch`); the batches are
handed to the producer before every offset commit (``app.before_commit``), so a commit
never passes a moment whose observation is still in memory; a duplicate that is the same
input record read again sends its observation again; one batch is sent at a time, so a
touchpoint's batches keep their order.

Each worker serves the statuses of the partitions it runs, as the
``mot_touchpoint_status`` gauge (read from the table at scrape time, so a touchpoint
whose partition moved away is no longer exported here) and at ``GET /touchpoints``,
which also asks every other worker of the group (their addresses come from the
group's assignment) for theirs and merges the answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Iterator
from typing import Any

import aiohttp
import orjson
from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

from agents.domain.moment_processor import Processed
from agents.domain.touchpoint_observations import ObservationBuffer, decode_batch
from agents.domain.touchpoint_status import (
    CODEC,
    KIND,
    TouchpointState,
    baseline_failure_rate,
    figures,
    judge_batch,
    partition_of,
    status_level,
    status_view,
    with_partition,
)
from agents.domain.touchpoint_status import status_alert as build_status_alert
from agents.rules_topic import rules_book, wait_loaded
from streams import metrics as m
from streams.app import app, settings
from streams.faust_ext.table_access import store, stored, stored_items, typed_table
from streams.partition_routing import same_worker
from streams.topics import raw_topic, touchpoint_status_alerts_topic
from streams.web import page, web_guard

log = logging.getLogger(__name__)

observations_topic = raw_topic(f"{settings.app_id}-touchpoint-observations", internal=True)
touchpoint_status = typed_table(app.Table("touchpoint-status", default=None, key_type=str,
                                          value_type=bytes, partitions=settings.partitions),
                                CODEC)

observations = ObservationBuffer(settings.touchpoint_batch_max)


def status_now() -> Any:
    """The andon's settings of the rules that apply now (for the views and gauges)."""
    return rules_book().at(time.time()).config.status


async def observe_moment(done: Processed) -> None:
    """Hand one counted moment to its touchpoint's andon (called by the scoring agent)."""
    o = done.observation
    if o is None:
        return
    if observations.add(o.touchpoint, o.at, o.failed, o.event_id, o.position):
        async with _sending:
            value = observations.take(o.touchpoint)
            if value is not None:
                await observations_topic.send(key=o.touchpoint.encode(), value=value)


# Taken and sent under one lock: a batch taken later never overtakes an earlier one.
_sending = asyncio.Lock()


async def flush_observations() -> None:
    async with _sending:
        for touchpoint, value in observations.drain():
            await observations_topic.send(key=touchpoint.encode(), value=value)


app.before_commit.append(flush_observations)


@app.timer(interval=settings.touchpoint_flush_s)
async def send_observations() -> None:
    await flush_observations()


@app.on_partitions_revoked.connect
async def _flush_before_revoke(sender: Any, revoked: Any, **kwargs: Any) -> None:
    await flush_observations()


@app.on_before_shutdown.connect
async def _flush_before_shutdown(sender: Any, **kwargs: Any) -> None:
    await flush_observations()


async def judge(event: Any) -> None:
    """One batch of a touchpoint's moments, judged in order; one table write."""
    msg = event.message
    touchpoint = msg.key.decode()
    judged = judge_batch(stored(touchpoint_status, touchpoint), decode_batch(msg.value),
                         lambda at: rules_book().at(at).config.status)
    if judged.late:
        m.touchpoint_observations_late.inc(judged.late)
    for transition, event_id, resent in judged.transitions:
        version = rules_book().at(transition.at).config  # the rules of its event time
        alert = build_status_alert(touchpoint, transition, event_id, version.status,
                                   time.time(), version.rules_version)
        await touchpoint_status_alerts_topic.send(key=touchpoint.encode(),
                                                  value=orjson.dumps(alert))
        m.alerts_emitted.labels(KIND).inc()
        if not resent:
            log.info("touchpoint %s: %s -> %s", touchpoint, alert["previous_status"],
                     alert["status"])
    st = judged.state
    if judged.write and st is not None:
        store(touchpoint_status, touchpoint, with_partition(st, msg.partition))


@app.agent(observations_topic, name="touchpoint-andon")
async def touchpoint_andon(stream: AsyncIterable[Any]) -> None:
    await wait_loaded()
    async for event in stream.events():  # type: ignore[attr-defined]
        try:
            await judge(event)
        except Exception:  # a defect must not stop the andon of every other touchpoint
            msg = event.message
            log.exception("internal error on touchpoint observation %s[%s]@%s; skipped",
                          msg.topic, msg.partition, msg.offset)


def local_statuses() -> Iterator[tuple[str, TouchpointState]]:
    """The touchpoints whose partition this worker runs, with their state."""
    owned = {tp.partition for tp in app.assignor.assigned_actives()
             if tp.topic == observations_topic.get_topic_name()}
    for touchpoint, st in stored_items(touchpoint_status):
        if partition_of(st) in owned:
            yield touchpoint, st


class TouchpointCollector:
    """``mot_touchpoint_status`` and the figures behind it, read at scrape time."""

    def describe(self) -> list[GaugeMetricFamily]:
        return self._families()

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("mot_touchpoint_status",
                              "Andon status of a touchpoint: 0 green, 1 amber, 2 red.",
                              labels=["touchpoint"]),
            GaugeMetricFamily("mot_touchpoint_window_failure_rate",
                              "Failure rate of a touchpoint over its sliding window.",
                              labels=["touchpoint"]),
            GaugeMetricFamily("mot_touchpoint_baseline_failure_rate",
                              "A touchpoint's baseline failure rate (its own past).",
                              labels=["touchpoint"]),
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status, rate, base = self._families()
        try:
            for touchpoint, st in local_statuses():
                status.add_metric([touchpoint], status_level(st))
                rate.add_metric([touchpoint], figures(st, status_now()).rate)
                baseline = baseline_failure_rate(st)
                if baseline is not None:
                    base.add_metric([touchpoint], baseline)
        except Exception:  # tables not ready (starting, rebalancing): no samples this time
            log.debug("touchpoint statuses not readable yet", exc_info=True)
        yield from (status, rate, base)


REGISTRY.register(TouchpointCollector())


async def _peer(url: str) -> dict[str, Any] | None:
    try:
        async with app.http_client.get(f"{url.rstrip('/')}/touchpoints?scope=local",
                                       headers=web_guard.outgoing_headers(),
                                       timeout=aiohttp.ClientTimeout(total=3)) as r:
            if r.status != 200:
                return None
            return orjson.loads(await r.read())
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        log.warning("GET /touchpoints: worker %s did not answer (%s)", url, exc)
        return None


@page("/touchpoints")
async def touchpoints_page(web: Any, request: Any) -> Any:
    """Every touchpoint's current status, from every worker of the group."""
    mine = {tp: status_view(st, status_now()) for tp, st in local_statuses()}
    me = str(app.conf.canonical_url).rstrip("/")
    if request.query.get("scope") == "local":
        return web.json({"touchpoints": mine, "worker": me})
    peers = [u for u in app.assignor.tables_metadata() if not same_worker(str(u), me)]
    answers = await asyncio.gather(*(_peer(str(u)) for u in peers))
    merged = dict(mine)
    missing = []
    for url, answer in zip(peers, answers, strict=True):
        if answer is None:
            missing.append(str(url))
        else:
            merged.update(answer["touchpoints"])
    body = {"touchpoints": dict(sorted(merged.items())), "workers": 1 + len(peers),
            "complete": not missing, "missing_workers": missing}
    return web.json(body)
