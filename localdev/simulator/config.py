"""The simulator's settings and its fixed, documented credentials."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

ACCESS_KEY_B64 = "bW1zLXRyYWNrZXItc2ltdWxhdG9yLWtleS1ub3QtYS1zZWNyZXQtMDAwMDAwMDA="


def connection_string(port: int, host: str = "127.0.0.1") -> str:
    """The simulator's fixed, documented connection string (like Azurite's well-known key)."""
    return f"endpoint=http://{host}:{port}/;accesskey={ACCESS_KEY_B64}"


@dataclass
class SimulatorConfig:
    webhook_url: str = "http://127.0.0.1:7071/runtime/webhooks/eventgrid?functionName=on_delivery_report"
    access_key: bytes = base64.b64decode(ACCESS_KEY_B64)
    report_delay_seconds: float = 1.0
    slow_report_seconds: float = 10.0
    retry_scale: float = 0.01
    max_delivery_attempts: int = 30
    delivery_timeout_seconds: float = 30.0
    batch_size: int = 1
    max_concurrent_deliveries: int = 16
    clock_skew_seconds: float = 15 * 60

    @classmethod
    def from_environment(cls) -> SimulatorConfig:
        config = cls()
        env = os.environ
        host_port = env.get("LOCAL_HOST_PORT", "7071")
        config.webhook_url = env.get(
            "SIM_WEBHOOK_URL",
            f"http://127.0.0.1:{host_port}/runtime/webhooks/eventgrid?functionName=on_delivery_report",
        )
        for name, attr, kind in (
            ("SIM_REPORT_DELAY_SECONDS", "report_delay_seconds", float),
            ("SIM_SLOW_REPORT_SECONDS", "slow_report_seconds", float),
            ("SIM_RETRY_SCALE", "retry_scale", float),
            ("SIM_MAX_DELIVERY_ATTEMPTS", "max_delivery_attempts", int),
            ("SIM_DELIVERY_TIMEOUT_SECONDS", "delivery_timeout_seconds", float),
            ("SIM_BATCH_SIZE", "batch_size", int),
        ):
            if env.get(name):
                setattr(config, attr, kind(env[name]))
        return config
