"""The simulator's own routes under ``/simulator/``: inspection, fault switching and reset."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .eventgrid import RULES
from .mms_api import Faults, acs_error
from .topic import strict_json

if TYPE_CHECKING:
    from .server import Simulator


FAULT_NAMES = ("throttle", "retryAfter", "unavailable", "loseResponse", "publishUnavailable")


def _fault_counts(body: Any) -> dict[str, int]:
    """The faults asked for, all checked before any is set: a typo or a bad value changes nothing
    (before, a misspelt name silently reset every fault to 0, and a partial body set some)."""
    if not isinstance(body, dict):
        raise ValueError("The body is not a JSON object")
    unknown = sorted(set(body) - set(FAULT_NAMES))
    if unknown:
        raise ValueError(f"Unknown fault {unknown[0]!r}")
    for name, value in body.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a whole number from 0")
    return dict(body)


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
            faults = _fault_counts(strict_json(await request.read()))
        except ValueError as exc:
            return acs_error(
                400,
                "BadRequest",
                f'{exc}. Expected {{"throttle": N, "retryAfter": S, "unavailable": N, "loseResponse": N, '
                '"publishUnavailable": N}, each a whole number from 0; a name left out is 0 (retryAfter: 1).',
            )
        simulator.faults = Faults(
            throttle=faults.get("throttle", 0),
            retry_after=faults.get("retryAfter", 1),
            unavailable=faults.get("unavailable", 0),
            lose_response=faults.get("loseResponse", 0),
        )
        simulator.topic.unavailable = faults.get("publishUnavailable", 0)
        return web.json_response(
            dataclasses.asdict(simulator.faults) | {"publishUnavailable": simulator.topic.unavailable}
        )

    async def inbound(request: web.Request) -> web.Response:
        try:
            body = strict_json(await request.read())
            if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("from", "to", "message")):
                raise ValueError("The body is not a JSON object with from, to and message strings")
        except ValueError as exc:
            return acs_error(400, "BadRequest", str(exc))
        event = simulator.engine.schedule_inbound(body["from"], body["to"], body["message"])
        return web.json_response({"id": event["id"], "messageId": event["data"]["messageId"]}, status=202)

    async def reset(request: web.Request) -> web.Response:
        simulator.reset()
        return web.Response(status=204)

    app.router.add_get("/simulator/messages", list_messages)
    app.router.add_get("/simulator/deliveries", list_deliveries)
    app.router.add_get("/simulator/dead-letters", list_dead_letters)
    app.router.add_get("/simulator/stats", stats)
    app.router.add_get("/simulator/rules", rules)
    app.router.add_post("/simulator/faults", set_faults)
    app.router.add_post("/simulator/inbound", inbound)
    app.router.add_post("/simulator/reset", reset)
