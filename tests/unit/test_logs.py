"""Structured log lines: one line per event, whatever the values hold."""

from __future__ import annotations

import logging

import pytest

from mms_tracker.logs import log_event

_log = logging.getLogger("tests.logs")


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("m-1\nforged_event status=Delivered", "'m-1\\nforged_event status=Delivered'"),
        ("m-1\nforged_event", "m-1\\nforged_event"),
        ("m-1\r\x1b[31mred\x00", "m-1\\r\\x1b[31mred\\x00"),
        ("m-1\u2028\u2029\u200b\ufeff\ud800", "m-1\\u2028\\u2029\\u200b\\ufeff\\ud800"),
        ("m-1\U000e0001\U0010fffe", "m-1\\U000e0001\\U0010fffe"),
        ("héllo✓日本", "héllo✓日本"),
        ("back\\slash", "back\\slash"),
    ],
)
def test_a_field_renders_on_one_line_with_control_characters_escaped(
    caplog: pytest.LogCaptureFixture, value: str, rendered: str
) -> None:
    caplog.set_level(logging.INFO, logger="tests.logs")
    log_event(_log, logging.INFO, "delivery_report", message_id=value, status="Delivered")
    [record] = caplog.records
    assert record.getMessage() == f"delivery_report message_id={rendered} status=Delivered"
    assert record.fields == {"message_id": value, "status": "Delivered"}  # type: ignore[attr-defined]


def test_no_character_of_a_field_breaks_the_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tests.logs")
    unusual = "".join(c for c in map(chr, range(0x3000)) if not c.isprintable())
    log_event(_log, logging.INFO, "e", spaced=unusual + " ", unspaced=unusual)
    [record] = caplog.records
    assert len(record.getMessage().splitlines()) == 1
