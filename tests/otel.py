"""In-memory OpenTelemetry for tests: spans and metrics recorded by the app's real instrumentation.

OpenTelemetry's global providers can be set once per process, so :func:`captured` sets them on
first use (a tracer provider exporting to an ``InMemorySpanExporter``, a meter provider read by an
``InMemoryMetricReader``) and every test that asks for telemetry gets the same ones, emptied.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mms_tracker import telemetry


class Captured:
    """The spans finished and the metric points recorded since the test began."""

    def __init__(self, exporter: InMemorySpanExporter, reader: InMemoryMetricReader) -> None:
        self.exporter = exporter
        self.reader = reader
        self._baseline: dict[tuple[str, frozenset[tuple[str, Any]]], float] = {}

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if name is None or s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.spans(name)
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def points(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], float]:
        """Each metric stream's cumulative value (a counter's sum, a histogram's count)."""
        values: dict[tuple[str, frozenset[tuple[str, Any]]], float] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, frozenset((point.attributes or {}).items()))
                        values[key] = float(getattr(point, "value", getattr(point, "count", 0)))
        return values

    def reset_metrics(self) -> None:
        self._baseline = self.points()

    def metric(self, name: str, **attributes: Any) -> float:
        """How much the stream ``name`` with exactly ``attributes`` grew since the test began."""
        key = (name, frozenset(attributes.items()))
        return self.points().get(key, 0.0) - self._baseline.get(key, 0.0)

    def histogram(self, name: str) -> list[tuple[dict[str, Any], float, int]]:
        """``(attributes, sum, count)`` of each stream of the histogram ``name`` (cumulative)."""
        found = []
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(p.attributes or {}), p.sum, p.count) for p in metric.data.data_points]
        return found


_CAPTURED: Captured | None = None


def _providers() -> Captured:
    global _CAPTURED
    if _CAPTURED is None:
        exporter = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(tracer_provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _CAPTURED = Captured(exporter, reader)
    return _CAPTURED


def captured() -> Iterator[Captured]:
    """Turn the app's telemetry on, with the httpx and azure-core instrumentation the wiring adds; off after."""
    from azure.core.settings import settings
    from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    capture = _providers()
    capture.exporter.clear()
    capture.reset_metrics()
    telemetry.enable()
    settings.tracing_implementation = OpenTelemetrySpan
    HTTPXClientInstrumentor().instrument()
    try:
        yield capture
    finally:
        HTTPXClientInstrumentor().uninstrument()
        settings.tracing_implementation = None  # type: ignore[assignment]  # unset, as before the test
        telemetry.disable()
