"""``GET /customers/{customer_id}``: a customer's running score, open circles and recent
moments, answered by the worker that owns the customer's partition.

The customer's state lives in the ``customer-state`` table partition of the input
record's partition (the record key is the customer id), so the request is routed by the
input topic's partitioning: a worker that does not own the partition forwards it to the
one that does, using the ``MOT_WEB_HOST``/``MOT_WEB_PORT`` each worker announces to the
others (``streams.partition_routing``, which also says why not ``app.topic_route``).

The page needs the data pages' bearer token (``streams.web.page``), checked before the id
is even looked at. An id no event could carry (longer than the event schema allows, not
UTF-8, a dot segment) is answered 400 before any lookup or routing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from agents.domain.customer_view import customer_view, not_found
from agents.scoring import customer_state_of
from streams.app import app, settings
from streams.partition_routing import route_by_partition
from streams.topics import events_topic
from streams.web import page, web_guard

#: ``customer_id``'s ``maxLength`` in schemas/touchpoint-event.v1.schema.json (characters).
MAX_CUSTOMER_ID_CHARS = 128
PREFIX = "/customers/"


def id_problem(raw_path: str) -> str | None:
    """Why the id in ``raw_path`` (still percent-encoded) cannot be a customer's, or None.

    The router decodes the path leniently (invalid UTF-8 stays as ``%FF`` text, a real
    customer ``%FF`` is sent as ``%25FF``), so the raw segment is decoded here, strictly.
    """
    segment = raw_path.split("?", 1)[0].removeprefix(PREFIX)
    if len(segment) > 3 * 4 * MAX_CUSTOMER_ID_CHARS:  # more than any encoding of 128 chars
        return f"longer than {MAX_CUSTOMER_ID_CHARS} characters"
    try:
        customer_id = unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if len(customer_id) > MAX_CUSTOMER_ID_CHARS:
        return f"longer than {MAX_CUSTOMER_ID_CHARS} characters"
    if customer_id in ("", ".", ".."):
        return "a path segment, not an id"
    return None


@page("/customers/{customer_id}")
async def customer_page(web: Any, request: Any, customer_id: str) -> Any:
    problem = id_problem(request.raw_path)
    if problem is not None:
        return web.json({"error": "invalid_customer_id", "detail": f"the id is {problem}"},
                        status=400)

    async def answer_here() -> Any:
        state = customer_state_of(customer_id)
        body = customer_view(customer_id, state) if state is not None else not_found(customer_id)
        body["served_by"] = str(app.conf.canonical_url)  # the owner, whichever worker was asked
        return web.json(body, status=200 if state is not None else 404)

    return await route_by_partition(app, web, request, events_topic.get_topic_name(),
                                    customer_id.encode(), answer_here,
                                    settings.web_route_timeout_s,
                                    headers=web_guard.outgoing_headers())
