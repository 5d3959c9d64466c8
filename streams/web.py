"""HTTP pages on the worker's web port: Prometheus metrics and a health check."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.app import app


@app.page("/metrics")
async def metrics_page(web: Any, request: Any) -> Any:
    return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@app.page("/health")
async def health_page(web: Any, request: Any) -> Any:
    """200 once the worker runs its agents; 503 while it starts or recovers tables."""
    ready = app.rebalancing is False and app.tables.recovery.completed.is_set()
    body = {"status": "ok" if ready else "starting"}
    return web.json(body, status=200 if ready else 503)
