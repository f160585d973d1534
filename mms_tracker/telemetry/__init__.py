"""The app's own spans and metrics, and nothing at all until an exporter is configured.

``telemetry.wiring`` configures the exporters at start-up and then calls :func:`enable`. Until it
does (no ``APPLICATIONINSIGHTS_CONNECTION_STRING`` and no ``OTEL_EXPORTER_OTLP_ENDPOINT``), every
function here is a no-op that imports nothing: :func:`span` yields a span that drops what it is
given, and the metric functions return at once. The ``opentelemetry`` API is imported only by
:func:`enable`.

Spans (names and attributes in docs/operations.md):

- ``mms.send`` around one ``POST /api/messages``; its children are the ACS call (httpx
  instrumentation) and the table writes (azure-core tracing). The send's W3C ``traceparent`` is
  stored on each record it writes (:func:`stamping_traceparent`).
- ``mms.delivery_report`` around one report, linked to the send's span when the record holds
  the send's ``traceparent``; ``mms.expire`` around an expiry run; ``mms.reconcile`` around a
  reconciler run; ``mms.publish`` (:func:`publish_span`) around each publish request of
  status-change events. Records the reconciler writes carry the send's ``traceparent``, kept on
  the send's intent (:func:`with_traceparent`).

The ``mms.outbox.pending`` gauge is observed from figures already in memory
(:func:`observe_outbox_pending`), never from storage.

No attribute carries a phone number (masked with :func:`mms_tracker.logs.mask_phone`) or a body.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..domain import Change, DeliveryReport, Status, TrackingRecord
from ..logs import mask_phone

if TYPE_CHECKING:  # imported for annotations only: the module itself never imports opentelemetry
    from opentelemetry.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider

INSTRUMENTATION_NAME = "mms_tracker"
AttributeValue = str | int | float | bool

# Attribute names from the OpenTelemetry semantic conventions, messaging and general registries
# (opentelemetry-semantic-conventions 0.66b1: semconv/_incubating/attributes/messaging_attributes.py
# MESSAGING_MESSAGE_ID, MESSAGING_SYSTEM with MessagingSystemValues.EVENTGRID = "eventgrid",
# MESSAGING_OPERATION_TYPE with "process" and "send", MESSAGING_OPERATION_NAME,
# MESSAGING_BATCH_MESSAGE_COUNT; attributes/error_attributes.py ERROR_TYPE).
MESSAGING_MESSAGE_ID = "messaging.message.id"
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_BATCH_MESSAGE_COUNT = "messaging.batch.message_count"
EVENTGRID = "eventgrid"
ERROR_TYPE = "error.type"
MAX_DETAILS_CHARS = 256  # ACS's deliveryStatusDetails are short fixed texts; a longer one is cut


class SpanHandle(Protocol):
    """What the app does with a span: set attributes and add a link to another trace."""

    def set(self, key: str, value: AttributeValue | None) -> None: ...

    def link(self, traceparent: str | None) -> None: ...


class _NoSpan:
    def set(self, key: str, value: AttributeValue | None) -> None:
        pass

    def link(self, traceparent: str | None) -> None:
        pass


_NO_SPAN = _NoSpan()


class _Span:
    def __init__(self, span: Span) -> None:
        self._span = span

    def set(self, key: str, value: AttributeValue | None) -> None:
        if value is not None:
            self._span.set_attribute(key, value)

    def link(self, traceparent: str | None) -> None:
        context = _span_context(traceparent)
        if context is not None:
            self._span.add_link(context)


@dataclass(frozen=True)
class _Instruments:
    tracer: Tracer
    sends: Counter
    reports: Counter
    poison: Counter
    latency: Histogram
    ingest_lag: Histogram
    reconciled: Counter


_active: _Instruments | None = None


def enabled() -> bool:
    """True once :func:`enable` ran: spans and metrics are recorded."""
    return _active is not None


def enable(tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None) -> None:
    """Record spans and metrics through the given providers (the global ones by default)."""
    global _active
    from opentelemetry.metrics import get_meter
    from opentelemetry.trace import get_tracer

    from .. import __version__

    tracer = get_tracer(INSTRUMENTATION_NAME, __version__, tracer_provider)
    meter = get_meter(INSTRUMENTATION_NAME, __version__, meter_provider)
    _active = _Instruments(
        tracer=tracer,
        sends=meter.create_counter("mms.sends", "{recipient}", "Recipients of POST /api/messages, by mms.result"),
        reports=meter.create_counter(
            "mms.reports", "{report}", "Delivery reports, by mms.outcome and mms.delivery_status"
        ),
        poison=meter.create_counter("mms.poison", "{event}", "Events that can never be processed, by mms.reason"),
        latency=meter.create_histogram("mms.delivery.latency", "s", "From the send to its first final report"),
        ingest_lag=meter.create_histogram(
            "mms.ingest.lag", "s", "From a report's receivedTimestamp to its recording here"
        ),
        reconciled=meter.create_counter(
            "mms.reconciled", "{send}", "Send intents each reconciler run found, by mms.outcome"
        ),
    )
    meter.create_observable_gauge(
        "mms.outbox.pending",
        [_observe_pending],
        "{event}",
        "Status-change events not yet published, by mms.source (worker queue, retry timer's last run)",
    )


def disable() -> None:
    """Stop recording (tests; the app never disables)."""
    global _active
    _active = None


@contextmanager
def span(
    name: str, attributes: Mapping[str, AttributeValue | None] | None = None, *, kind: str = "internal"
) -> Iterator[SpanHandle]:
    """A span named ``name`` around the block, current for what runs inside it (so it parents the
    HTTP and storage calls). An exception leaving the block is recorded, sets the span's status to
    error and ``error.type`` to its class name, and propagates."""
    if _active is None:
        yield _NO_SPAN
        return
    from opentelemetry.trace import SpanKind

    with _active.tracer.start_as_current_span(
        name, kind=SpanKind[kind.upper()], attributes={k: v for k, v in (attributes or {}).items() if v is not None}
    ) as current:
        try:
            yield _Span(current)
        except BaseException as exc:
            current.set_attribute(ERROR_TYPE, type(exc).__qualname__)
            raise


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, or None when there is none (or telemetry is off)."""
    if _active is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def _span_context(traceparent: str | None) -> Any:
    if not traceparent:
        return None
    from opentelemetry.trace import get_current_span
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = get_current_span(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    span_context = context.get_span_context()
    return span_context if span_context.is_valid else None


Store = TypeVar("Store")


class _StampingStore:
    """A tracking store whose applied changes carry ``traceparent`` on records that lack one."""

    def __init__(self, store: Any, traceparent: str) -> None:
        self._store = store
        self._traceparent = traceparent

    async def apply(
        self, message_id: str, decide: Callable[[TrackingRecord | None], Change | None], **options: Any
    ) -> Change | None:
        def stamped(record: TrackingRecord | None) -> Change | None:
            change = decide(record)
            if change is None or not change.changed or change.after.traceparent is not None:
                return change
            return replace(change, after=replace(change.after, traceparent=self._traceparent))

        result: Awaitable[Change | None] = self._store.apply(message_id, stamped, **options)
        return await result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def stamping_traceparent(store: Store) -> Store:
    """``store``, or, inside a span, a view of it that stores the span's ``traceparent`` on each
    record it creates or changes that has none yet: the send path writes through it, so a report
    that arrives days later can link its span to the send's."""
    return with_traceparent(store, current_traceparent())


def with_traceparent(store: Store, traceparent: str | None) -> Store:
    """``store``, or, given a ``traceparent``, a view of it that stores that one on each record it
    creates or changes that has none yet (the reconciler writes a send's records with the
    send's ``traceparent``, kept on its intent). Works whether or not telemetry is on."""
    if not traceparent:
        return store
    return _StampingStore(store, traceparent)  # type: ignore[return-value]  # a view with the same methods


def sent(items: list[dict[str, Any]]) -> None:
    """Count the recipients of one send by ``mms.result``: ``accepted`` or ``rejected``."""
    if _active is None:
        return
    accepted = sum(1 for item in items if item.get("successful"))
    if accepted:
        _active.sends.add(accepted, {"mms.result": "accepted"})
    if len(items) - accepted:
        _active.sends.add(len(items) - accepted, {"mms.result": "rejected"})


def send_failed(recipients: int, error: BaseException) -> None:
    """Count the recipients of a send that failed as a whole (ACS or storage trouble) as ``error``."""
    if _active is not None and recipients:
        _active.sends.add(recipients, {"mms.result": "error", ERROR_TYPE: type(error).__qualname__})


def report_recorded(current: SpanHandle, report: DeliveryReport, change: Change, now: dt.datetime) -> None:
    """Attribute the report's span, link it to the send, and record ``mms.reports``,
    ``mms.ingest.lag`` and (on the first final report of a sent message) ``mms.delivery.latency``."""
    if _active is None:
        return
    current.set(MESSAGING_MESSAGE_ID, report.message_id)
    current.set("mms.delivery_status", report.delivery_status)
    details = report.delivery_status_details
    current.set("mms.delivery_status_details", details[:MAX_DETAILS_CHARS] if details else None)
    current.set("mms.outcome", change.outcome)
    current.set("mms.status", change.after.status.value)
    current.set("mms.to", mask_phone(report.to))
    current.set("mms.tag", change.after.tag)
    current.link(change.after.traceparent)
    _active.reports.add(1, {"mms.outcome": change.outcome, "mms.delivery_status": report.delivery_status})
    if report.received_timestamp is not None:
        _active.ingest_lag.record(max(0.0, (now - report.received_timestamp).total_seconds()))
    latency = _delivery_latency(change)
    if latency is not None:
        _active.latency.record(latency, {"mms.status": change.after.status.value})


def _delivery_latency(change: Change) -> float | None:
    """Seconds from the send to the report that first made a sent record Delivered or Failed."""
    after, before = change.after, change.before
    if not change.changed or not after.sent or after.completed_at is None:
        return None
    if after.status not in (Status.DELIVERED, Status.FAILED):
        return None
    if before is not None and before.status not in (Status.ACCEPTED, Status.EXPIRED):
        return None
    return max(0.0, (after.completed_at - after.created_at).total_seconds())


def poisoned(current: SpanHandle, reason: str) -> None:
    """Record ``mms.poison`` by a low-cardinality ``mms.reason`` (the reason without its quoted detail)."""
    if _active is None:
        return
    kind = poison_kind(reason)
    current.set("mms.outcome", "poison")
    current.set("mms.reason", kind)
    _active.poison.add(1, {"mms.reason": kind})


def poison_kind(reason: str) -> str:
    """The reason without its detail: ``unknown event type 'X'`` -> ``unknown event type``,
    ``storage refused the record: X`` -> ``storage refused the record``."""
    return re.split(r"[:;(']", reason, maxsplit=1)[0].strip()[:80] or "unknown"


@contextmanager
def publish_span(event_ids: Sequence[str]) -> Iterator[SpanHandle]:
    """The ``mms.publish`` span around one publish request of status-change events to Event Grid.

    ``messaging.batch.message_count`` is the number of events in the request (the client's API
    takes a list); ``messaging.message.id`` is the event's CloudEvents ``id`` when there is one
    event. ``mms.outcome`` is ``published`` or ``failed`` (with ``error.type``). No event data
    (numbers, details) goes on the span."""
    attributes: dict[str, AttributeValue | None] = {
        MESSAGING_SYSTEM: EVENTGRID,
        MESSAGING_OPERATION_TYPE: "send",
        MESSAGING_OPERATION_NAME: "send",
        MESSAGING_BATCH_MESSAGE_COUNT: len(event_ids),
        MESSAGING_MESSAGE_ID: event_ids[0] if len(event_ids) == 1 else None,
    }
    with span("mms.publish", attributes, kind="producer") as current:
        try:
            yield current
        except Exception:
            current.set("mms.outcome", "failed")
            raise
        current.set("mms.outcome", "published")


def reconciled(current: SpanHandle, counts: Mapping[str, int]) -> None:
    """Attribute the ``mms.reconcile`` span with a run's counts (``mms.recorded``, ``mms.refused``...)
    and add them to ``mms.reconciled`` by ``mms.outcome``."""
    for outcome, count in counts.items():
        current.set(f"mms.{outcome}", count)
    if _active is None:
        return
    for outcome, count in counts.items():
        if count:
            _active.reconciled.add(count, {"mms.outcome": outcome})


_pending: dict[str, Callable[[], int]] = {}


def observe_outbox_pending(source: str, count: Callable[[], int] | int) -> None:
    """What ``mms.outbox.pending`` reports for ``source`` (``worker`` or ``timer``): a function
    read at each collection (it must be cheap: no storage), or a figure kept until the next call."""
    _pending[source] = count if callable(count) else (lambda: count)


def _observe_pending(options: Any) -> Iterator[Any]:
    from opentelemetry.metrics import Observation

    for source, count in list(_pending.items()):
        yield Observation(count(), {"mms.source": source})
