"""A stand-in for an ACS resource and its Event Grid system topic, for local runs and tests.

- ``POST /mms?api-version=2024-01-14-preview``: HMAC-SHA256 access-key auth verified as ACS
  does (string to sign ``VERB\\npath?query\\nx-ms-date;host;x-ms-content-sha256``, content hash
  checked against the body, clock-skew window), per-recipient results as in the ACS sample,
  repeatability by ``repeatabilityRequestId``.
- After each accepted recipient, ``SMSDeliveryReportReceived`` events (Event Grid schema) go to
  the webhook with Event Grid's semantics: a validation handshake first, ``aeg-event-type:
  Notification``, redelivery with backoff on non-2xx and timeouts, dead-lettering on 400/413 or
  when attempts run out, optional batching.
- Outcomes are steered by the recipient number's last four digits (see ``RULES``), and send-side
  faults are switched at runtime through ``POST /simulator/faults``.
- It also hosts an Event Grid custom topic for the app's status-change events (``topic``):
  ``POST /eventgrid/api/events`` with ``aeg-sas-key`` (``TOPIC_KEY``), ``GET /simulator/published``,
  and ``publishUnavailable`` on ``/simulator/faults``.
- Replies: ``POST /simulator/inbound {from, to, message}`` publishes an ``SMSReceived`` event
  (Event Grid schema) to the same webhook; a recipient ending ``7867`` replies STOP to every MMS.
- ACS's Opt-Out Management API (``optouts``): ``POST /sms/optouts:add|remove|check?api-version=
  2024-12-10-preview``, HMAC-signed like ``/mms``.
- Inspection: ``GET /simulator/messages``, ``/simulator/deliveries``, ``/simulator/dead-letters``,
  ``/simulator/stats``; ``POST /simulator/reset``.

The package: ``mms_api`` (the MMS API, its auth, validation, answers and faults), ``eventgrid``
(the report events, the steering rules and the delivery engine), ``admin`` (``/simulator/*``),
``topic`` (the status-events topic), ``optouts`` (the Opt-Out Management API), ``server`` (the
application that joins them, and ``main``), ``config`` (settings, credentials).

Run it with ``python -m localdev.simulator``; settings are environment variables
(docs/development.md, "The ACS simulator").
"""

from .config import ACCESS_KEY_B64, SimulatorConfig, connection_string
from .eventgrid import EVENT_GRID_BACKOFF, REPORT_EVENT_TYPE, RULES, TOPIC, Delivery, DeliveryEngine
from .mms_api import API_VERSION, MMS_CONTENT_TYPES, Faults, MmsApi
from .server import Simulator, main
from .topic import TOPIC_KEY, TOPIC_PATH, Topic, topic_endpoint

__all__ = [
    "ACCESS_KEY_B64",
    "API_VERSION",
    "EVENT_GRID_BACKOFF",
    "MMS_CONTENT_TYPES",
    "REPORT_EVENT_TYPE",
    "RULES",
    "TOPIC",
    "TOPIC_KEY",
    "TOPIC_PATH",
    "Delivery",
    "DeliveryEngine",
    "Faults",
    "MmsApi",
    "Simulator",
    "SimulatorConfig",
    "Topic",
    "connection_string",
    "main",
    "topic_endpoint",
]
