"""The Faust app class and Kafka transport with the service's consumer and producer, and
its web driver.

Changes: ``App._new_transport`` and ``App._new_producer_transport`` (private in
faust-streaming) build :class:`Transport`, the aiokafka driver's transport whose
``Consumer`` is :class:`streams.faust_ext.batch_delivery.BatchingConsumer` and whose
``Producer`` is :class:`streams.faust_ext.changelog_writer.FlushingProducer`.
``App._new_web`` (private) builds :class:`streams.faust_ext.http_errors.JsonErrorWeb`.

Why: Faust takes the transport class from the broker URL's scheme and the web driver from
the ``web`` URL's, and offers no public setting for the consumer, producer or web driver
class. Upstream candidate: ``App(Consumer=..., Producer=..., Web=...)`` settings like the
existing ``Table=`` and ``TableManager=``.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.faust_ext.batch_delivery import BatchingConsumer
from streams.faust_ext.changelog_writer import FlushingProducer
from streams.faust_ext.http_errors import JsonErrorWeb


class Transport(faust_aiokafka.Transport):
    """Faust's Kafka transport with the service's consumer and producer (see their modules)."""

    Consumer = BatchingConsumer
    Producer = FlushingProducer


class MotApp(faust.App):
    """Faust's app on :class:`Transport` and :class:`JsonErrorWeb`; ``batched_topics`` are
    delivered in batches; ``before_commit`` are awaited before every offset commit's
    producer flush (see :meth:`BatchingConsumer._handle_attached`)."""

    batched_topics: frozenset[str] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_commit: list[Callable[[], Awaitable[None]]] = []

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        return Transport(self.conf.broker_producer, self)

    def _new_web(self) -> Any:
        return JsonErrorWeb(self)
