"""ACS's Opt-Out Management API: ``POST /sms/optouts:add|remove|check?api-version=2024-12-10-preview``.

From Azure/azure-rest-api-specs, specification/communication/data-plane/Sms/preview/2024-12-10-preview/
(communicationservicessms.json and examples/OptOutAdd.json, OptOutRemove.json, OptOutCheck.json):
body ``{"from", "recipients": [{"to"}]}``, answer 200 ``{"value": [{"to", "httpStatusCode"}]}``, with
``isOptedOut`` on check. HMAC auth as for ``/mms``; a ``to`` that is not E.164 is answered 400 in its item.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .mms_api import E164, MmsApi, acs_error

OPTOUT_API_VERSION = "2024-12-10-preview"


class OptOutApi:
    """The opted-out (from, to) pairs, changed and checked through the three actions."""

    def __init__(self, mms: MmsApi) -> None:
        self._mms = mms
        self.pairs: set[tuple[str, str]] = set()

    def reset(self) -> None:
        self.pairs.clear()

    def add_routes(self, app: web.Application) -> None:
        for action in ("add", "remove", "check"):
            app.router.add_post(f"/sms/optouts:{action}", self._handler(action))

    def _handler(self, action: str) -> Any:
        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            problem = self._mms.verify_signature(request.method, request.raw_path, request.headers, body)
            if problem:
                return acs_error(401, "Denied", problem)
            if request.query.get("api-version") != OPTOUT_API_VERSION:
                return acs_error(400, "BadRequest", f"Unsupported api-version; use {OPTOUT_API_VERSION}.")
            try:
                payload = json.loads(body)
                sender = payload["from"]
                recipients = [r["to"] for r in payload["recipients"]]
                if not isinstance(sender, str) or not 1 <= len(recipients) <= 100:
                    raise ValueError("from and 1 to 100 recipients are required")
            except (ValueError, KeyError, TypeError) as exc:
                return acs_error(400, "BadRequest", f"The request body is malformed: {exc}")
            return web.json_response({"value": [self._answer(action, sender, to) for to in recipients]})

        return handle

    def _answer(self, action: str, sender: str, to: Any) -> dict[str, Any]:
        if not isinstance(to, str) or not E164.fullmatch(to):
            return {"to": to, "httpStatusCode": 400}
        if action == "add":
            self.pairs.add((sender, to))
        elif action == "remove":
            self.pairs.discard((sender, to))
        else:
            return {"to": to, "isOptedOut": (sender, to) in self.pairs, "httpStatusCode": 200}
        return {"to": to, "httpStatusCode": 200}
