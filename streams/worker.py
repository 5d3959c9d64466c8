"""Entry point of a worker process: the app with its agents and web pages."""

from __future__ import annotations

import asyncio
import logging
import sys

import agents.customer_api  # registers GET /customers/{id}
import agents.erasure  # erasure requests, receipts and the suppression table
import agents.rules_topic  # the rules topic's reader and GET /rules
import agents.scoring  # registers the agent and its table
import agents.silent_journeys  # noqa: F401  (the silence check; scoring registers the andon)
import streams.consumer_lag  # registers the lag timer (mot_consumer_lag_messages)
import streams.web  # noqa: F401  (registers /metrics and /health)
from agents.domain.erasure import HashKeyMissing
from agents.suppression import hash_key
from streams.app import app, settings
from streams.faust_ext.quiet_worker import QuietWorker
from streams.kafka.admin import ensure_topics

log = logging.getLogger(__name__)


def main() -> None:
    try:
        hash_key()  # erasure receipts, suppression and hashed alerts need it
    except (HashKeyMissing, OSError) as exc:
        sys.exit(f"mot worker: {exc}")
    # Faust creates its own internal topics but not the ones the service reads and
    # writes; a source topic created after the worker subscribed would only be
    # noticed at the next metadata refresh (minutes), so create them first.
    try:
        asyncio.run(ensure_topics(settings))
    except Exception as exc:  # e.g. no CreateTopics permission: the operator made them
        logging.basicConfig()
        log.warning("could not ensure the service topics exist (%s); continuing", exc)
    worker = QuietWorker(app, loglevel=settings.log_level.upper())
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
