"""Typed settings, read and validated once at start-up.

Every setting is an environment variable (an app setting in Azure, a ``Values`` entry in
``local.settings.json`` under Core Tools). A missing or malformed one raises
:class:`SettingsError` naming it, so the app fails fast instead of at the first request.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_TABLE_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,29}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and never echoes a secret."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"setting {name}: {problem}")
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

    @property
    def default_sender(self) -> str:
        return self.senders[0]

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        """Read and validate settings; raise :class:`SettingsError` naming the first bad one."""
        access_key = _acs_access_key(environ.get("ACS_CONNECTION_STRING", "").strip())
        acs_endpoint = (
            access_key.endpoint
            if access_key
            else _https_or_http_url("ACS_ENDPOINT", environ.get("ACS_ENDPOINT", "").strip())
        )
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
        prefix = environ.get("TRACKING_TABLE_PREFIX", "mms").strip()
        if not _TABLE_PREFIX.match(prefix):
            raise SettingsError("TRACKING_TABLE_PREFIX", "must be a letter then up to 29 letters or digits")
        return cls(
            acs_endpoint=acs_endpoint,
            acs_access_key=access_key,
            senders=_senders(environ.get("MMS_SENDERS", "")),
            storage_connection_string=connection_string,
            storage_table_endpoint=table_endpoint,
            table_prefix=prefix,
            storage_timeout_seconds=_positive_float(environ, "TRACKING_STORAGE_TIMEOUT_SECONDS", 10.0),
            expiry_window_hours=_positive_float(environ, "EXPIRY_WINDOW_HOURS", 72.0),
            query_token_key=environ.get("QUERY_TOKEN_KEY", "").strip() or None,
            max_request_bytes=int(_positive_float(environ, "MMS_MAX_REQUEST_BYTES", 2 * 1024 * 1024)),
            max_attachment_bytes=int(_positive_float(environ, "MMS_MAX_ATTACHMENT_BYTES", 1024 * 1024)),
            acs_timeout_seconds=_positive_float(environ, "ACS_TIMEOUT_SECONDS", 20.0),
            acs_max_attempts=int(_positive_float(environ, "ACS_MAX_ATTEMPTS", 4)),
            acs_retry_max_seconds=_positive_float(environ, "ACS_RETRY_MAX_SECONDS", 30.0),
        )


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
        if not E164.match(sender):
            raise SettingsError("MMS_SENDERS", "every entry must be an E.164 number like +18005550100")
    return senders


def _positive_float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, "must be a number") from None
    if value <= 0:
        raise SettingsError(name, "must be positive")
    return value
