"""The simulator as one aiohttp application (the MMS API, the delivery engine, the admin routes), and its CLI."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .admin import add_admin_routes
from .config import SimulatorConfig
from .eventgrid import Delivery, DeliveryEngine
from .mms_api import Faults, MmsApi
from .optouts import OptOutApi
from .topic import Topic


class Simulator:
    """The simulator's state and its aiohttp application."""

    def __init__(self, config: SimulatorConfig, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self.stats: dict[str, int] = {
            "requests": 0,
            "unauthorized": 0,
            "sent": 0,
            "repeats": 0,
            "throttled": 0,
            "unavailable": 0,
            "lost_responses": 0,
            "delivery_attempts": 0,
            "handshakes": 0,
        }
        self.engine = DeliveryEngine(config, self.stats, clock or (lambda: asyncio.get_running_loop().time()))
        self.api = MmsApi(config, self.stats, self.engine.schedule_reports)
        self.topic = Topic(self.stats)
        self.optouts = OptOutApi(self.api)

    def build(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/mms", self.api.send)
        self.topic.add_routes(app)
        self.optouts.add_routes(app)
        add_admin_routes(app, self)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    @property
    def faults(self) -> Faults:
        return self.api.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self.api.faults = value

    @property
    def messages(self) -> dict[str, dict[str, Any]]:
        return self.api.messages

    @property
    def by_request_id(self) -> dict[str, dict[str, Any]]:
        return self.api.by_request_id

    @property
    def deliveries(self) -> list[Delivery]:
        return self.engine.deliveries

    @property
    def dead_letters(self) -> list[Delivery]:
        return self.engine.dead_letters

    def verify_signature(self, method: str, path_and_query: str, headers: Any, body: bytes) -> str | None:
        """None when the request is signed as ACS requires, else why not."""
        return self.api.verify_signature(method, path_and_query, headers, body)

    def reset(self) -> None:
        """Forget every message, delivery and fault, and ask for a new handshake."""
        self.api.reset()
        self.engine.reset()
        self.topic.reset()
        self.optouts.reset()
        for key in self.stats:
            self.stats[key] = 0

    async def _start(self, app: web.Application) -> None:
        await self.engine.start()

    async def _stop(self, app: web.Application) -> None:
        await self.engine.stop()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stdout)
    port = int(os.environ.get("ACS_SIMULATOR_PORT", "7072"))
    simulator = Simulator(SimulatorConfig.from_environment())
    print(f"ACS simulator on http://127.0.0.1:{port} delivering reports to {simulator.config.webhook_url}", flush=True)
    web.run_app(simulator.build(), host="127.0.0.1", port=port, print=None, access_log=None, shutdown_timeout=3)
    return 0
