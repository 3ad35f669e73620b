"""The HTTP surface: /healthz, /readyz, /metrics, and the ingest endpoint beside them."""

from __future__ import annotations

from aiohttp import web

from bot.infra.health import Health
from bot.infra.metrics import CONTENT_TYPE, Metrics
from bot.runtime.ingest import Ingest

MAX_BODY_BYTES = 16 * 1024 * 1024  # ingest batches; DingTalk frames never come this way

HEALTH_KEY = web.AppKey("health", Health)
METRICS_KEY = web.AppKey("metrics", Metrics)


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the event loop answers and no essential background task has died."""
    health = request.app[HEALTH_KEY]
    body = health.snapshot()
    return web.json_response(body, status=503 if health.fatal else 200)


async def readyz(request: web.Request) -> web.Response:
    """Readiness: rules loaded, consumer running, stream connected, queue not full."""
    health = request.app[HEALTH_KEY]
    body = health.snapshot()
    return web.json_response(body, status=503 if body["problems"] else 200)


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus scrape endpoint."""
    body = request.app[METRICS_KEY].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application, health: Health, registry: Metrics) -> None:
    """Mount /healthz, /readyz and /metrics on ``app``."""
    app[HEALTH_KEY] = health
    app[METRICS_KEY] = registry
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def build_app(health: Health, registry: Metrics, ingest: Ingest) -> web.Application:
    """The whole HTTP application of a replica."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    add_routes(app, health, registry)
    ingest.add_routes(app)
    return app
