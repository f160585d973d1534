"""The simulator's own routes under ``/simulator/``: inspection, fault switching and reset."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from aiohttp import web

from .eventgrid import RULES
from .mms_api import Faults, acs_error

if TYPE_CHECKING:
    from .server import Simulator


def add_admin_routes(app: web.Application, simulator: Simulator) -> None:
    """``GET /simulator/{messages,deliveries,dead-letters,stats,rules}``, ``POST /simulator/{faults,reset}``."""

    async def list_messages(request: web.Request) -> web.Response:
        return web.json_response({"items": list(simulator.messages.values())})

    async def list_deliveries(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "items": [dataclasses.asdict(d) for d in simulator.deliveries],
                "pending": simulator.engine.pending,
            }
        )

    async def list_dead_letters(request: web.Request) -> web.Response:
        return web.json_response({"items": [dataclasses.asdict(d) for d in simulator.dead_letters]})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            simulator.stats
            | {
                "pending": simulator.engine.pending,
                "delivered": len(simulator.deliveries),
                "deadLettered": len(simulator.dead_letters),
                "validated": simulator.engine.validated,
                "faults": dataclasses.asdict(simulator.faults) | {"publishUnavailable": simulator.topic.unavailable},
                "published": len(simulator.topic.published),
            }
        )

    async def rules(request: web.Request) -> web.Response:
        return web.json_response({"byLastFourDigits": RULES, "default": "Delivered after report_delay_seconds"})

    async def set_faults(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            simulator.faults = Faults(
                throttle=int(body.get("throttle", 0)),
                retry_after=int(body.get("retryAfter", 1)),
                unavailable=int(body.get("unavailable", 0)),
                lose_response=int(body.get("loseResponse", 0)),
            )
            simulator.topic.unavailable = int(body.get("publishUnavailable", 0))
        except (ValueError, TypeError, AttributeError):
            return acs_error(
                400,
                "BadRequest",
                'Expected {"throttle": N, "retryAfter": S, "unavailable": N, "loseResponse": N, '
                '"publishUnavailable": N}.',
            )
        return web.json_response(
            dataclasses.asdict(simulator.faults) | {"publishUnavailable": simulator.topic.unavailable}
        )

    async def reset(request: web.Request) -> web.Response:
        simulator.reset()
        return web.Response(status=204)

    app.router.add_get("/simulator/messages", list_messages)
    app.router.add_get("/simulator/deliveries", list_deliveries)
    app.router.add_get("/simulator/dead-letters", list_dead_letters)
    app.router.add_get("/simulator/stats", stats)
    app.router.add_get("/simulator/rules", rules)
    app.router.add_post("/simulator/faults", set_faults)
    app.router.add_post("/simulator/reset", reset)
