"""Start-up wiring of traces, metrics and logs: Application Insights, an OTLP receiver, or nothing.

:func:`configure_from_environment` runs once, from ``function_app.py``, before any client is built:

- ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set: the Azure Monitor distro
  (``azure.monitor.opentelemetry.configure_azure_monitor``), authenticated with Entra ID when
  ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` says ``Authorization=AAD`` (as ``infra/`` sets it:
  ``ClientId=<the app's identity>;Authorization=AAD``). The distro instruments httpx and azure-core.
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` set: the standard OTLP/HTTP exporters for all three signals (the
  ``OTEL_EXPORTER_OTLP_*`` variables configure them as the OpenTelemetry SDK documents), plus the
  httpx instrumentation and azure-core's OpenTelemetry tracing. With both set, both receive.
- Neither: nothing is configured and nothing is imported (cold start pays nothing).

The structured fields of ``log_event`` reach both as log record attributes (:class:`FieldsAsAttributes`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..logs import log_event

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord

LOGGER_NAME = "mms_tracker"  # the app's loggers; the host logs its own side
SERVICE_NAME = "mms-tracker"
_configured: list[str] | None = None
_log = logging.getLogger("mms_tracker.telemetry")


def configure_from_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Configure the exporters the environment names, once per process; return their names
    (``azure_monitor``, ``otlp``), empty when there are none."""
    global _configured
    if _configured is not None:
        return _configured
    env = os.environ if environ is None else environ
    connection_string = env.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
    otlp_endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if not connection_string and not otlp_endpoint:
        _configured = []
        return _configured
    try:
        _configured = _configure(connection_string, bool(otlp_endpoint), env)
    except Exception as exc:  # noqa: BLE001  # never stop the app loading: settings.py names the bad setting
        log_event(_log, logging.ERROR, "telemetry_not_configured", reason=type(exc).__name__)
        _configured = []
    return _configured


def _configure(connection_string: str, otlp: bool, env: Mapping[str, str]) -> list[str]:
    from opentelemetry.sdk.resources import SERVICE_NAME as SERVICE_NAME_KEY
    from opentelemetry.sdk.resources import Resource

    from . import enable

    resource = Resource.create({SERVICE_NAME_KEY: env.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
    fields = _fields_processor()
    if connection_string:
        from azure.monitor.opentelemetry import configure_azure_monitor

        span_processors, metric_readers, log_processors = _otlp_pipeline() if otlp else ([], [], [])
        configure_azure_monitor(
            connection_string=connection_string,
            credential=_credential(env),
            logger_name=LOGGER_NAME,
            resource=resource,
            span_processors=span_processors,
            metric_readers=metric_readers,
            log_record_processors=[fields, *log_processors],
            enable_live_metrics=False,  # a second Entra-authenticated channel nobody here reads
        )
    else:
        _configure_otlp(resource, fields)
    enable()
    return ["azure_monitor", *(["otlp"] if otlp else [])] if connection_string else ["otlp"]


def _credential(env: Mapping[str, str]) -> Any:
    """The app's managed identity when the authentication string asks for Entra ID, else None (key in the string)."""
    text = env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")
    parts = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    client_id = parts.get("ClientId") or env.get("AZURE_CLIENT_ID")
    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()


def _otlp_pipeline() -> tuple[list[Any], list[Any], list[Any]]:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return (
        [BatchSpanProcessor(OTLPSpanExporter())],
        [PeriodicExportingMetricReader(OTLPMetricExporter())],
        [BatchLogRecordProcessor(OTLPLogExporter())],
    )


def _configure_otlp(resource: Any, fields: LogRecordProcessor) -> None:
    from azure.core.settings import settings
    from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.metrics import set_meter_provider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import set_tracer_provider

    span_processors, metric_readers, log_processors = _otlp_pipeline()
    tracer_provider = TracerProvider(resource=resource)
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    set_tracer_provider(tracer_provider)
    set_meter_provider(MeterProvider(metric_readers=metric_readers, resource=resource))
    logger_provider = LoggerProvider(resource=resource)
    for log_processor in (fields, *log_processors):
        logger_provider.add_log_record_processor(log_processor)
    set_logger_provider(logger_provider)
    logging.getLogger(LOGGER_NAME).addHandler(LoggingHandler(logger_provider=logger_provider))
    # The distro does exactly these two for Application Insights (configure_azure_monitor's
    # azure_sdk and httpx instrumentations); here they are done by hand.
    settings.tracing_implementation = OpenTelemetrySpan
    HTTPXClientInstrumentor().instrument()


def _fields_processor() -> LogRecordProcessor:
    from opentelemetry.sdk._logs import LogRecordProcessor

    class FieldsAsAttributes(LogRecordProcessor):
        """Spread ``log_event``'s fields (``record.fields``) into top-level log record attributes.

        The handler turns every ``extra`` of a ``logging.LogRecord`` into an attribute; ``fields``
        would arrive as one nested map, which Application Insights shows as a single JSON string.
        Flat, each field is a custom dimension of its own (``customDimensions.message_id``).
        """

        def on_emit(self, log_record: ReadWriteLogRecord) -> None:
            spread_fields(log_record.log_record.attributes)

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return FieldsAsAttributes()


def spread_fields(attributes: Any) -> None:
    """Replace the ``fields`` map of a log record's attributes by one attribute per field (None dropped;
    values that are not str, bool, int or float as their ``str``)."""
    if attributes is None:
        return
    fields = attributes.get("fields")
    if not isinstance(fields, Mapping):
        return
    del attributes["fields"]
    for key, value in fields.items():
        if value is not None:
            attributes[str(key)] = value if isinstance(value, (str, bool, int, float)) else str(value)
