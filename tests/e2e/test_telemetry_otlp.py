"""The stack as ``make run`` starts it, exporting over OTLP/HTTP to a receiver this test runs.

The receiver decodes each export with ``opentelemetry-proto`` (the OTLP protobuf messages), so
the test reads what any OTLP backend would: the send span and the report span of one message,
the report linked to the send's trace, and the ``mms.*`` metrics.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support import ROOT, fixture, free_port, poll

pytestmark = pytest.mark.e2e

# The OTLP/HTTP paths of each signal, from the OTLP specification (opentelemetry-proto's
# collector services; the exporters append them to OTEL_EXPORTER_OTLP_ENDPOINT).
MESSAGES = {"/v1/traces": ExportTraceServiceRequest, "/v1/metrics": ExportMetricsServiceRequest}
MESSAGES["/v1/logs"] = ExportLogsServiceRequest


class Receiver:
    """An OTLP/HTTP (protobuf) receiver that keeps every decoded export request."""

    def __init__(self) -> None:
        self.received: dict[str, list[Any]] = {path: [] for path in MESSAGES}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server dispatches to
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                message = MESSAGES.get(self.path)
                if message is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                decoded = message.FromString(body)
                with receiver.lock:
                    receiver.received[self.path].append(decoded)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # the base class's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list[Any]:
        with self.lock:
            requests = list(self.received["/v1/traces"])
        return [s for r in requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def metric_names(self) -> set[str]:
        with self.lock:
            requests = list(self.received["/v1/metrics"])
        return {m.name for r in requests for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}

    def log_attributes(self) -> list[dict[str, str]]:
        with self.lock:
            requests = list(self.received["/v1/logs"])
        return [
            {a.key: a.value.string_value for a in record.attributes}
            for r in requests
            for rl in r.resource_logs
            for sl in rl.scope_logs
            for record in sl.log_records
        ]


def attributes(span: Any) -> dict[str, Any]:
    return {a.key: a.value.string_value or a.value.int_value for a in span.attributes}


def test_the_stack_exports_the_send_and_report_spans_of_one_message_over_otlp() -> None:
    receiver = Receiver()
    receiver.thread.start()
    ports = {
        name: free_port()
        for name in (
            "LOCAL_HOST_PORT",
            "ACS_SIMULATOR_PORT",
            "AZURITE_BLOB_PORT",
            "AZURITE_QUEUE_PORT",
            "AZURITE_TABLE_PORT",
        )
    }
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "AZURITE_LOCATION": "memory",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        # Export soon after each span and metric, so the test waits seconds, not the SDK's defaults.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    stack = subprocess.Popen(
        [sys.executable, "-m", "localdev.stack"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{ports['LOCAL_HOST_PORT']}/api"

        def healthy() -> bool:
            try:
                return httpx.get(f"{base}/health", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        poll(healthy, deadline_seconds=60, interval=0.2)
        sent = httpx.post(f"{base}/messages", json=fixture("seed_send_request.json"), timeout=30)
        assert sent.status_code == 202, sent.text
        message_id = sent.json()["value"][0]["messageId"]

        def report_span() -> Any:
            found = [
                s
                for s in receiver.spans()
                if s.name == "mms.delivery_report" and attributes(s).get("messaging.message.id") == message_id
            ]
            return found[0] if found else None

        report = poll(report_span, deadline_seconds=45, interval=0.2)
        [send] = [s for s in receiver.spans() if s.name == "mms.send"]
        assert attributes(send) == {
            "mms.tag": "CustomerId",
            "mms.recipients": 3,
            "mms.accepted": 2,
            "mms.rejected": 1,
        }
        assert attributes(report)["mms.outcome"] == "applied"
        assert attributes(report)["mms.status"] == "Delivered"
        assert [(link.trace_id, link.span_id) for link in report.links] == [(send.trace_id, send.span_id)]
        ours = {s.span_id for s in receiver.spans() if s.trace_id == send.trace_id and s.parent_span_id == send.span_id}
        assert ours  # the ACS call and the table writes travel in the send's trace

        wanted = {"mms.sends", "mms.reports", "mms.ingest.lag", "mms.delivery.latency"}
        poll(lambda: wanted <= receiver.metric_names() or None, deadline_seconds=30, interval=0.2)
        logged = poll(
            lambda: [a for a in receiver.log_attributes() if a.get("event") == "delivery_report"] or None,
            deadline_seconds=30,
            interval=0.2,
        )
        assert any(a.get("message_id") == message_id and a.get("outcome") == "applied" for a in logged)

        stack.send_signal(signal.SIGINT)
        output, _ = stack.communicate(timeout=30)
        assert stack.returncode == 0, output
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.communicate()
        receiver.server.shutdown()
        receiver.server.server_close()
