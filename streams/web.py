"""HTTP pages on the worker's web port: Prometheus metrics, a health check, and
:func:`page`, through which every page is registered (guarded unless it says otherwise)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.app import app, settings
from streams.metrics import restore_progress
from streams.web_auth import Guard, TokenSource

Handler = Callable[..., Awaitable[Any]]

#: The token of the data pages (customers, touchpoints, and any page to come).
web_tokens = TokenSource(literal=settings.web_token, path=settings.web_token_file)
web_guard = Guard((web_tokens,), max_in_flight=settings.web_max_in_flight)
#: ``/metrics`` is open unless MOT_METRICS_TOKEN_FILE is set; then its token (or the
#: data pages' one, which may read more than metrics anyway) is needed.
metrics_guard: Guard | None = (
    Guard((TokenSource(path=settings.metrics_token_file), web_tokens),
          max_in_flight=settings.web_max_in_flight)
    if settings.metrics_token_file else None)


def page(path: str, *, public: bool = False,
         guard: Guard | None = None) -> Callable[[Handler], Any]:
    """``app.page`` with the bearer-token guard: protected unless ``public=True``.

    ``guard`` replaces the data pages' guard (``/metrics`` has its own token).
    """

    def decorate(handler: Handler) -> Any:
        chosen = guard or web_guard
        return app.page(path)(handler if public else chosen.guard(handler))

    return decorate


async def metrics(web: Any, request: Any) -> Any:
    return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


if metrics_guard is None:
    page("/metrics", public=True)(metrics)
else:
    page("/metrics", guard=metrics_guard)(metrics)


def health_body() -> tuple[dict[str, Any], bool]:
    """What ``/health`` says, and whether the worker serves: ``ok``; ``recovering`` with
    the restore's figures while it restores its tables from their changelogs; else
    ``starting``."""
    ready = app.rebalancing is False and app.tables.recovery.completed.is_set()
    if ready:
        return {"status": "ok"}, True
    progress = restore_progress()
    if progress is not None and progress.recovering:
        return {"status": "recovering",
                "records_restored": progress.records_restored,
                "records_remaining": progress.records_remaining,
                "records_per_s": round(progress.records_per_s, 1),
                "eta_s": None if progress.eta_s is None else round(progress.eta_s, 1)}, False
    return {"status": "starting"}, False


@page("/health", public=True)
async def health_page(web: Any, request: Any) -> Any:
    """200 once the worker runs its agents; 503 while it starts or recovers tables."""
    body, ready = health_body()
    return web.json(body, status=200 if ready else 503)
