"""Typed settings, read and validated once at start-up.

Every setting is an environment variable (an app setting in Azure, a ``Values`` entry in
``local.settings.json`` under Core Tools). Missing or malformed ones raise one
:class:`SettingsError` naming each; the runtime keeps that error so that the app still loads
(every function indexed) and health and every route answer 503 naming the settings.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .domain.phone import is_e164

_TABLE_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,29}")


class SettingsError(ValueError):
    """Settings are missing or malformed; names each one and never echoes a value.

    ``problems`` maps every bad setting's name to what is wrong with it; ``name`` is the first.
    """

    def __init__(self, name: str, problem: str, *more: tuple[str, str]) -> None:
        self.problems = dict(((name, problem), *more))
        super().__init__("; ".join(f"setting {n}: {p}" for n, p in self.problems.items()))
        self.name = name


@dataclass(frozen=True)
class AcsAccessKey:
    """An ACS endpoint with its HMAC access key, parsed from ``ACS_CONNECTION_STRING``."""

    endpoint: str
    access_key: bytes = field(repr=False)


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, validated."""

    acs_endpoint: str
    acs_access_key: AcsAccessKey | None
    senders: tuple[str, ...]
    storage_connection_string: str | None = field(repr=False)
    storage_table_endpoint: str | None
    table_prefix: str = "mms"
    storage_timeout_seconds: float = 10.0
    expiry_window_hours: float = 72.0
    query_token_key: str | None = field(default=None, repr=False)
    max_request_bytes: int = 2 * 1024 * 1024
    max_attachment_bytes: int = 1024 * 1024
    acs_timeout_seconds: float = 20.0
    acs_max_attempts: int = 4
    acs_retry_max_seconds: float = 30.0
    retention_days: float = 90.0
    campaign_sends_per_second: float = 10.0
    campaign_max_request_bytes: int = 8 * 1024 * 1024
    campaign_storage_connection_string: str | None = field(default=None, repr=False)
    campaign_storage_account: str | None = None
    reconcile_after_seconds: float = 60.0
    # Test-only fault hook: the worker process exits right after ACS answered, before any record
    # is written (tests/e2e/test_send_intents.py). Never set it anywhere else.
    test_crash_after_acs: bool = False
    status_events_endpoint: str | None = None
    status_events_key: str | None = field(default=None, repr=False)
    status_events_retry_window_minutes: float = 60.0
    report_max_future_skew_seconds: float = 300.0
    app_name: str | None = None  # WEBSITE_SITE_NAME, set by Azure: the status events' source

    @property
    def default_sender(self) -> str:
        return self.senders[0]

    @property
    def send_deadline_seconds(self) -> float:
        """The longest a send can take to answer: a storage phase before the ACS call (earlier
        results, the intent), the ACS budget (its retries, then one whole attempt), a storage
        phase after it (records, results); each storage phase is bounded by the storage timeout."""
        return 2 * self.storage_timeout_seconds + self.acs_retry_max_seconds + self.acs_timeout_seconds

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate settings; raise one :class:`SettingsError` naming every bad one."""
        found: dict[str, Any] = {}
        problems: list[tuple[str, str]] = []

        def read(key: str, parse: Callable[[], Any]) -> None:
            try:
                found[key] = parse()
            except SettingsError as exc:
                problems.extend(exc.problems.items())

        read("acs", lambda: _acs(environ))
        read("storage", lambda: _storage(environ))
        read("table_prefix", lambda: _table_prefix(environ))
        read("senders", lambda: _senders(environ.get("MMS_SENDERS", "")))
        read("query_token_key", lambda: _query_token_key(environ))
        read("campaign_storage", lambda: _campaign_storage(environ))
        read("test_crash_after_acs", lambda: environ.get("MMS_TEST_CRASH_AFTER_ACS", "").strip() == "1")
        read("status_events", lambda: _status_events(environ))
        read("telemetry", lambda: _telemetry(environ))
        for key, name, low, high in _NUMBERS:
            read(key, functools.partial(_number, environ, name, float(default_of(key)), low, high))
        for key, name, whole_low, whole_high in _WHOLE_NUMBERS:
            read(key, functools.partial(_whole_number, environ, name, int(default_of(key)), whole_low, whole_high))
        if problems:
            raise SettingsError(problems[0][0], problems[0][1], *problems[1:])
        found.pop("telemetry")  # checked here so a bad value is named like any other; telemetry.wiring uses it
        access_key, acs_endpoint = found.pop("acs")
        # The crash hook works only against an ACS on this machine (the simulator), never a real one.
        found["test_crash_after_acs"] = found["test_crash_after_acs"] and _is_loopback(acs_endpoint)
        connection_string, table_endpoint = found.pop("storage")
        found["status_events_endpoint"], found["status_events_key"] = found.pop("status_events")
        found["campaign_storage_connection_string"], found["campaign_storage_account"] = found.pop("campaign_storage")
        return cls(
            app_name=environ.get("WEBSITE_SITE_NAME", "").strip() or None,
            acs_endpoint=acs_endpoint,
            acs_access_key=access_key,
            storage_connection_string=connection_string,
            storage_table_endpoint=table_endpoint,
            **found,
        )


def default_of(key: str) -> Any:
    """The default of the :class:`Settings` field ``key``: the one place each default is written."""
    return {f.name: f.default for f in dataclasses.fields(Settings)}[key]


# The checks of azure-monitor-opentelemetry-exporter 1.0.0b58 (_connection_string_parser.py): `key=value`
# pairs split on ";", InstrumentationKey a lower-case UUID, Authorization (if any) "ikey".
_INSTRUMENTATION_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _telemetry(environ: Mapping[str, str]) -> None:
    """``APPLICATIONINSIGHTS_CONNECTION_STRING`` and ``OTEL_EXPORTER_OTLP_ENDPOINT``: optional, usable when set."""
    problems: list[tuple[str, str]] = []
    connection_string = environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip()
    if connection_string:
        pairs = [part.split("=") for part in connection_string.split(";")]
        fields = {pair[0].lower(): pair[1] for pair in pairs if len(pair) == 2}
        if len(fields) != len(pairs) or not _INSTRUMENTATION_KEY.fullmatch(fields.get("instrumentationkey", "")):
            problems.append(
                ("APPLICATIONINSIGHTS_CONNECTION_STRING", "must be an Application Insights connection string")
            )
        elif fields.get("authorization", "ikey").lower() != "ikey":
            problems.append(("APPLICATIONINSIGHTS_CONNECTION_STRING", "Authorization, when given, must be ikey"))
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(("OTEL_EXPORTER_OTLP_ENDPOINT", "must be an http:// or https:// URL"))
    if problems:
        raise SettingsError(problems[0][0], problems[0][1], *problems[1:])


# Numeric settings: (field, name, lowest, highest). Every value must be finite and in range. Each
# default is written once, as the field's default on :class:`Settings` (read by :func:`default_of`).
_NUMBERS: tuple[tuple[str, str, float, float], ...] = (
    ("storage_timeout_seconds", "TRACKING_STORAGE_TIMEOUT_SECONDS", 0.1, 300.0),
    ("expiry_window_hours", "EXPIRY_WINDOW_HOURS", 0.001, 8760.0),
    ("acs_timeout_seconds", "ACS_TIMEOUT_SECONDS", 0.1, 300.0),
    ("acs_retry_max_seconds", "ACS_RETRY_MAX_SECONDS", 0.0, 600.0),
    ("retention_days", "RETENTION_DAYS", 0.001, 36500.0),
    ("campaign_sends_per_second", "CAMPAIGN_SENDS_PER_SECOND", 0.01, 1000.0),
    ("reconcile_after_seconds", "SEND_RECONCILE_AFTER_SECONDS", 0.0, 86400.0),
    ("status_events_retry_window_minutes", "STATUS_EVENTS_RETRY_WINDOW_MINUTES", 1.0, 10080.0),
    ("report_max_future_skew_seconds", "REPORT_MAX_FUTURE_SKEW_SECONDS", 0.0, 86400.0),
)
_WHOLE_NUMBERS: tuple[tuple[str, str, int, int], ...] = (
    # At most 3 MiB: a send's intent keeps the whole request in one entity-group transaction (4 MiB).
    ("max_request_bytes", "MMS_MAX_REQUEST_BYTES", 1024, 3 * 1024 * 1024),
    ("max_attachment_bytes", "MMS_MAX_ATTACHMENT_BYTES", 1, 64 * 1024 * 1024),
    ("acs_max_attempts", "ACS_MAX_ATTEMPTS", 1, 10),
    ("campaign_max_request_bytes", "CAMPAIGN_MAX_REQUEST_BYTES", 1024, 100 * 1024 * 1024),
)


def _acs(environ: Mapping[str, str]) -> tuple[AcsAccessKey | None, str]:
    access_key = _acs_access_key(environ.get("ACS_CONNECTION_STRING", "").strip())
    if access_key:
        return access_key, access_key.endpoint
    return None, _https_or_http_url("ACS_ENDPOINT", environ.get("ACS_ENDPOINT", "").strip())


def _storage(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    connection_string = environ.get("TRACKING_STORAGE_CONNECTION_STRING", "").strip() or None
    table_endpoint = environ.get("TRACKING_STORAGE_TABLE_ENDPOINT", "").strip() or None
    if connection_string is None and table_endpoint is None:
        raise SettingsError(
            "TRACKING_STORAGE_CONNECTION_STRING",
            "set it (or TRACKING_STORAGE_TABLE_ENDPOINT for managed identity)",
        )
    if connection_string is not None:
        _check_storage_connection_string(connection_string)
    elif table_endpoint is not None:
        table_endpoint = _https_or_http_url("TRACKING_STORAGE_TABLE_ENDPOINT", table_endpoint)
    return connection_string, table_endpoint


# Azurite's well-known development account (github.com/Azure/Azurite, README "Default Storage Account").
_DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
)


def _campaign_storage(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Campaigns use the host's own storage, ``AzureWebJobsStorage`` (the queue trigger's connection):
    a connection string locally, ``AzureWebJobsStorage__accountName`` (managed identity) in Azure.
    Unset, campaigns are off (their routes answer 503 naming it); the rest of the app works."""
    value = environ.get("AzureWebJobsStorage", "").strip()
    account = environ.get("AzureWebJobsStorage__accountName", "").strip() or None
    if value == "UseDevelopmentStorage=true":
        return _DEVELOPMENT_STORAGE, None
    if value:
        keys = {p.partition("=")[0].strip().lower() for p in value.split(";") if p.strip()}
        if "accountname" not in keys and "queueendpoint" not in keys:
            raise SettingsError("AzureWebJobsStorage", "expected a storage connection string")
        return value, None
    if account is not None and not re.fullmatch(r"[a-z0-9]{3,24}", account):
        raise SettingsError("AzureWebJobsStorage__accountName", "must be a storage account name")
    return None, account


def _query_token_key(environ: Mapping[str, str]) -> str | None:
    key = environ.get("QUERY_TOKEN_KEY", "").strip() or None
    if key is not None and len(key) < 16:
        raise SettingsError(
            "QUERY_TOKEN_KEY", "must be at least 16 characters (or unset: a random key is kept in storage)"
        )
    return key


def _status_events(environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """The topic status changes go to (unset: none), and its access key (unset: Entra ID)."""
    endpoint = environ.get("STATUS_EVENTS_ENDPOINT", "").strip() or None
    key = environ.get("STATUS_EVENTS_KEY", "").strip() or None
    if endpoint is not None:
        endpoint = _https_or_http_url("STATUS_EVENTS_ENDPOINT", endpoint)
    return endpoint, key


def _table_prefix(environ: Mapping[str, str]) -> str:
    prefix = environ.get("TRACKING_TABLE_PREFIX", str(default_of("table_prefix"))).strip()
    if not _TABLE_PREFIX.fullmatch(prefix):
        raise SettingsError("TRACKING_TABLE_PREFIX", "must be a letter then up to 29 letters or digits")
    return prefix


def _acs_access_key(value: str) -> AcsAccessKey | None:
    if not value:
        return None
    parts: dict[str, str] = {}
    for part in value.split(";"):
        if part.strip():
            name, sep, val = part.partition("=")
            if not sep:
                raise SettingsError("ACS_CONNECTION_STRING", "expected endpoint=...;accesskey=...")
            parts[name.strip().lower()] = val.strip()
    endpoint = parts.get("endpoint", "")
    key = parts.get("accesskey", "")
    if not endpoint or not key:
        raise SettingsError("ACS_CONNECTION_STRING", "expected endpoint=...;accesskey=...")
    try:
        secret = base64.b64decode(key, validate=True)
    except binascii.Error:
        raise SettingsError("ACS_CONNECTION_STRING", "accesskey is not valid base64") from None
    return AcsAccessKey(_https_or_http_url("ACS_CONNECTION_STRING", endpoint), secret)


def _is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def _https_or_http_url(name: str, value: str) -> str:
    if not value:
        if name == "ACS_ENDPOINT":
            raise SettingsError("ACS_CONNECTION_STRING", "set it (or ACS_ENDPOINT for Entra ID auth)")
        raise SettingsError(name, "is required")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise SettingsError(name, "must be an absolute http(s) URL")
    return value.rstrip("/")


def _check_storage_connection_string(value: str) -> None:
    if value == "UseDevelopmentStorage=true":
        return
    keys = {p.partition("=")[0].strip().lower() for p in value.split(";") if p.strip()}
    if "accountname" not in keys and "tableendpoint" not in keys:
        raise SettingsError("TRACKING_STORAGE_CONNECTION_STRING", "expected AccountName=... or TableEndpoint=...")


def _senders(value: str) -> tuple[str, ...]:
    senders = tuple(s.strip() for s in value.split(",") if s.strip())
    if not senders:
        raise SettingsError("MMS_SENDERS", "list at least one E.164 number, comma-separated")
    for sender in senders:
        if not is_e164(sender):
            raise SettingsError("MMS_SENDERS", "every entry must be an E.164 number like +18005550100")
    return senders


def _number(
    environ: Mapping[str, str], name: str, default: float, low: float, high: float, *, whole: bool = False
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, "must be a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise SettingsError(name, f"must be a finite number from {low:g} to {high:g}")
    if whole and not value.is_integer():
        raise SettingsError(name, "must be a whole number")
    return value


def _whole_number(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    return int(_number(environ, name, default, low, high, whole=True))
