"""Entry point of a worker process: the app with its agents and web pages."""

from __future__ import annotations

import asyncio
import logging

import faust

import agents.customer_api  # registers GET /customers/{id}
import agents.scoring  # registers the agent and its table
import agents.silent_journeys  # noqa: F401  (the silence check; scoring registers the andon)
import streams.consumer_lag  # registers the lag timer (mot_consumer_lag_messages)
import streams.web  # noqa: F401  (registers /metrics and /health)
from streams.app import app, settings
from streams.kafka_admin import ensure_topics

log = logging.getLogger(__name__)


class ServiceWorker(faust.Worker):
    """faust.Worker without the terminal spinner.

    At log levels of WARN and above Faust installs a spinner handler and sets the root
    logger to DEBUG so that every record turns it; every debug call of Faust and
    aiokafka on the per-message path then builds a LogRecord nobody reads (about a
    tenth of the worker's time under load).
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)
        logger.setLevel(level)


def main() -> None:
    # Faust creates its own internal topics but not the ones the service reads and
    # writes; a source topic created after the worker subscribed would only be
    # noticed at the next metadata refresh (minutes), so create them first.
    try:
        asyncio.run(ensure_topics(settings))
    except Exception as exc:  # e.g. no CreateTopics permission: the operator made them
        logging.basicConfig()
        log.warning("could not ensure the service topics exist (%s); continuing", exc)
    worker = ServiceWorker(app, loglevel=settings.log_level.upper())
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
