"""``GET /customers/{customer_id}``: a customer's running score, open circles and recent
moments, answered by the worker that owns the customer's partition.

The customer's state lives in the ``customer-state`` table partition of the input
record's partition (the record key is the customer id), so the request is routed by the
input topic's partitioning: a worker that does not own the partition forwards it to the
one that does, using the ``MOT_WEB_HOST``/``MOT_WEB_PORT`` each worker announces to the
others (``streams.partition_routing``, which also says why not ``app.topic_route``).
"""

from __future__ import annotations

from typing import Any

from agents.domain.customer_view import customer_view, not_found
from agents.scoring import customer_state_of
from streams.app import app, settings
from streams.partition_routing import route_by_partition
from streams.topics import events_topic


@app.page("/customers/{customer_id}")
async def customer_page(web: Any, request: Any, customer_id: str) -> Any:
    async def answer_here() -> Any:
        state = customer_state_of(customer_id)
        body = customer_view(customer_id, state) if state is not None else not_found(customer_id)
        body["served_by"] = str(app.conf.canonical_url)  # the owner, whichever worker was asked
        return web.json(body, status=200 if state is not None else 404)

    return await route_by_partition(app, web, request, events_topic.get_topic_name(),
                                    customer_id.encode(), answer_here,
                                    settings.web_route_timeout_s)
