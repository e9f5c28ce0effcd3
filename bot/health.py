"""/healthz, /readyz and /metrics over HTTP, for a supervisor, a load balancer and Prometheus.

* `/healthz`: the process is alive (its event loop answers): 200 `ok`.
* `/readyz`: it can serve: the database answers and is at the latest migration, and updates
  arrive (polling: a getUpdates answered recently; webhook: registered with Telegram).
  200 when all hold, else 503; the body (JSON) names each check.
* `/metrics`: bot/metrics.py's registry in Prometheus' text format; the outbox's backlog is
  read from the database at each scrape.

In webhook mode these paths are served by the webhook's own listener (bot/updates.py adds
`routes()` beside the webhook's path); `[health] port` (0: off, the default) opens a listener
of their own as well, in either mode: the one way to reach them when polling.
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado.httpserver import HTTPServer

from bot import metrics
from bot.services.container import Services
from storage.schema import current_revision, head_revision

log = logging.getLogger(__name__)

# A check that takes longer than this fails: a probe must answer while the database hangs.
CHECK_TIMEOUT = 5.0


async def _database(services: Services) -> tuple[bool, str]:
    try:
        revision = await asyncio.wait_for(services.db.read_statements(current_revision), CHECK_TIMEOUT)
    except TimeoutError:
        return False, f"no answer in {CHECK_TIMEOUT:g} s"
    except Exception as exc:  # any failure means not ready; named in the answer and the log
        log.warning("readiness: the database check failed: %s: %s", type(exc).__name__, exc)
        return False, f"{type(exc).__name__}: {exc}".splitlines()[0]
    if revision != head_revision():
        return False, f"schema at {revision}, not {head_revision()}: run tiendo init"
    return True, f"schema at {revision}"


async def readiness(services: Services) -> tuple[bool, dict[str, Any]]:
    """Whether this process can serve, with each check's outcome."""
    database = await _database(services)
    receiving = metrics.INTAKE.receiving()
    checks = {"database": database, "updates": receiving}
    ready = all(ok for ok, _ in checks.values())
    return ready, {
        "ready": ready,
        "leader": metrics.leader(),
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
    }


async def refresh_backlog(services: Services) -> None:
    """The outbox gauges, read now (left as they were if the database does not answer)."""
    try:
        backlog = await asyncio.wait_for(services.outbox.backlog(), CHECK_TIMEOUT)
    except Exception as exc:  # a scrape still answers with what the process knows
        log.warning("metrics: the outbox backlog could not be read: %s: %s", type(exc).__name__, exc)
        return
    metrics.OUTBOX_DUE.set(backlog.due)
    metrics.OUTBOX_OLDEST.set(backlog.oldest_age.total_seconds() if backlog.oldest_age else 0.0)


class _Handler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD")  # type: ignore[assignment]

    def initialize(self, services: Services) -> None:
        self.services = services

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, tornado.web.HTTPError):
            log.error(
                "health endpoint %s: %s: %s", self.request.path, typ.__name__ if typ else "error", value
            )


class Healthz(_Handler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.write("ok\n")

    head = get


class Readyz(_Handler):
    async def get(self) -> None:
        ready, body = await readiness(self.services)
        self.set_status(HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.write(json.dumps(body, ensure_ascii=False) + "\n")

    head = get


class Metrics(_Handler):
    async def get(self) -> None:
        await refresh_backlog(self.services)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.write(generate_latest(metrics.REGISTRY))

    head = get


def routes(services: Services) -> list[Any]:
    """The three paths, for a tornado Application (the webhook's, or the listener's below)."""
    kwargs = {"services": services}
    return [(r"/healthz", Healthz, kwargs), (r"/readyz", Readyz, kwargs), (r"/metrics", Metrics, kwargs)]


class HealthServer:
    """The paths on a listener of their own (`[health] listen` and `port`; port 0: none)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._server: HTTPServer | None = None

    def start(self) -> None:
        listen, port = self.services.config.health.listen, self.services.config.health.port
        if not port:
            return
        app = tornado.web.Application(routes(self.services), log_function=lambda handler: None)
        self._server = HTTPServer(app)
        self._server.listen(port, address=listen)
        log.info("health endpoints on http://%s:%s (/healthz, /readyz, /metrics)", listen, port)

    async def stop(self, _application: object = None) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()
            self._server = None
