"""Per-worker state: the settings, read once, and the clients, built once and reused.

The Functions Python worker runs every async invocation on one event loop, so clients are
built on first use and kept for the life of the loop. ``RUNTIME.configure`` is how
``function_app.py`` (and tests) hand in validated settings.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import httpx
from azure.data.tables.aio import TableServiceClient

from .adapters.acs import AcsClient, EntraSigner, HmacSigner, RetryPolicy, Signer
from .adapters.campaigns import CAMPAIGN_TABLE, CampaignClients, CampaignNotConfigured
from .adapters.eventgrid import EventGridStatusPublisher
from .adapters.tables.store import TableStore
from .domain.record import TrackingRecord
from .logs import log_event
from .service.campaigns import SendThrottle
from .service.ports import (
    Dashboards,
    MmsSender,
    SendIntent,
    SendIntents,
    SendResults,
    StatusEventPublisher,
    StatusOutbox,
    TrackingStore,
)
from .service.reconciler import ReconcileDeps
from .service.sending import SendDeps
from .service.status_events import StatusPublishing, event_source
from .settings import Settings, SettingsError

_STORAGE_RETRIES = 3
_log = logging.getLogger("mms_tracker.settings")


class Misconfigured(RuntimeError):
    """The app's settings are missing or malformed: ``problems`` maps each setting's name to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        super().__init__("misconfigured settings: " + ", ".join(problems))
        self.problems = dict(problems)


class AppStore(TrackingStore, SendResults, SendIntents, StatusOutbox, Dashboards, Protocol):
    """What the app's routes and triggers use of a store: the ports, plus a health check and closing."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class Runtime:
    """Holds the settings and lazily builds the clients that depend on them."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._problems: dict[str, str] = {}
        self._store: AppStore | None = None
        self._store_override: AppStore | None = None
        self._acs: AcsClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acs_transport: httpx.AsyncBaseTransport | None = None
        self._publisher: StatusEventPublisher | None = None
        self._publisher_override: StatusEventPublisher | None = None
        self._publishing: StatusPublishing | None = None
        self._campaigns: CampaignClients | None = None
        self._throttle: SendThrottle | None = None

    def configure(
        self,
        settings: Settings,
        *,
        acs_transport: httpx.AsyncBaseTransport | None = None,
        store: AppStore | None = None,
        status_publisher: StatusEventPublisher | None = None,
    ) -> None:
        """Adopt ``settings``; clients built for earlier settings are dropped.

        ``acs_transport`` replaces the network under the ACS client (tests use ``httpx.MockTransport``);
        ``store`` replaces the table store (unit tests of the routes use a fake); ``status_publisher``
        replaces the Event Grid topic (tests use a fake that fails on schedule).
        """
        self._settings = settings
        self._problems = {}
        self._store = None
        self._store_override = store
        self._acs = None
        self._loop = None
        self._acs_transport = acs_transport
        self._publisher, self._publishing = None, None
        self._publisher_override = status_publisher
        self._campaigns, self._throttle = None, None

    def configure_from_environment(self, environ: Mapping[str, str] | None = None) -> Settings | None:
        """Read, validate and adopt settings from the environment.

        Never raises for a bad setting, so that the module that calls it at import time (and with
        it every function) still loads: the problems are logged once here, and every later use of
        :attr:`settings` raises :class:`Misconfigured` naming them (health and routes answer 503).
        """
        try:
            settings = Settings.from_environment(os.environ if environ is None else environ)
        except SettingsError as exc:
            self.configure_misconfigured(exc.problems)
            return None
        self.configure(settings)
        return settings

    def configure_misconfigured(self, problems: Mapping[str, str]) -> None:
        """Hold no settings, only what is wrong with them (by setting name, never a value)."""
        self._clear()
        self._problems = dict(problems)
        log_event(_log, logging.ERROR, "settings_invalid", settings=",".join(self._problems))

    def _clear(self) -> None:
        self._settings, self._problems = None, {}
        self._store, self._acs, self._loop, self._acs_transport = None, None, None, None
        self._store_override = None
        self._publisher, self._publisher_override, self._publishing = None, None, None
        self._campaigns, self._throttle = None, None

    @property
    def settings(self) -> Settings:
        """The validated settings; raise :class:`Misconfigured` when they were missing or malformed."""
        if self._settings is None:
            raise Misconfigured(self._problems or {"settings": "not configured: function_app.py configures them"})
        return self._settings

    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._store, self._acs, self._loop = None, None, loop
            self._publisher, self._publishing = None, None
            self._campaigns, self._throttle = None, None

    def store(self) -> AppStore:
        """The table store for the running event loop, built on first use."""
        self._same_loop()
        if self._store_override is not None:
            return self._store_override
        if self._store is None:
            settings = self.settings
            publishing = self.status_publisher() is not None
            self._store = TableStore(
                _table_service(settings),
                settings.table_prefix,
                settings.storage_timeout_seconds,
                _token_key(settings),
                status_listener=self._notify_status if publishing else None,
                status_events_enabled=publishing,
            )
            self.status_publishing()  # built now, over this store, so the listener has it to call
        return self._store

    def _notify_status(self, record: TrackingRecord) -> None:
        """The store's status listener: hand a record with pending events to the background publisher."""
        if self._publishing is not None:
            self._publishing.notify(record)

    def status_publisher(self) -> StatusEventPublisher | None:
        """The topic status changes are published to; None when ``STATUS_EVENTS_ENDPOINT`` is unset."""
        self._same_loop()
        if self._publisher_override is not None:
            return self._publisher_override
        settings = self.settings
        if self._publisher is None and settings.status_events_endpoint is not None:
            from azure.core.credentials import AzureKeyCredential

            credential: Any
            if settings.status_events_key is not None:
                credential = AzureKeyCredential(settings.status_events_key)
            else:
                from azure.identity.aio import DefaultAzureCredential

                credential = DefaultAzureCredential()
            self._publisher = EventGridStatusPublisher(
                settings.status_events_endpoint,
                credential,
                timeout_seconds=settings.storage_timeout_seconds,
                use_env_settings=False,
            )
        return self._publisher

    def status_publishing(self) -> StatusPublishing | None:
        """The worker's background publisher of status events, built on first use (None: no topic)."""
        publisher = self.status_publisher()
        if publisher is None:
            return None
        if self._publishing is None:
            self._publishing = StatusPublishing(self.store(), publisher, event_source(self.settings.app_name))
        return self._publishing

    def acs(self) -> AcsClient:
        """The ACS client for the running event loop, built on first use."""
        self._same_loop()
        if self._acs is None:
            settings = self.settings
            signer: Signer
            if settings.acs_access_key is not None:
                signer = HmacSigner(settings.acs_access_key.access_key)
            else:
                from azure.identity.aio import DefaultAzureCredential

                signer = EntraSigner(DefaultAzureCredential())
            self._acs = AcsClient(
                settings.acs_endpoint,
                signer,
                transport=self._acs_transport,
                timeout=httpx.Timeout(settings.acs_timeout_seconds, connect=min(5.0, settings.acs_timeout_seconds)),
                retry=RetryPolicy(
                    max_attempts=settings.acs_max_attempts, max_total_seconds=settings.acs_retry_max_seconds
                ),
                attempt_seconds=settings.acs_timeout_seconds,
            )
        return self._acs

    def message_sender(self) -> MmsSender:
        """The sender ``POST /messages`` uses: the ACS client, wrapped in :class:`CrashAfterAcs` when
        the test setting ``MMS_TEST_CRASH_AFTER_ACS=1`` is on (only ever against a loopback ACS)."""
        acs = self.acs()
        return CrashAfterAcs(acs) if self.settings.test_crash_after_acs else acs

    def send_deps(self) -> SendDeps:
        """What ``POST /messages`` sends with, from the settings and this loop's clients (the
        store serves as records, results and intents)."""
        settings, store = self.settings, self.store()
        return SendDeps(
            self.message_sender(),
            store,
            store,
            dt.timedelta(hours=settings.expiry_window_hours),
            dt.timedelta(days=settings.retention_days),
            intents=store,
            storage_budget=settings.storage_timeout_seconds,
            claim=dt.timedelta(seconds=settings.send_deadline_seconds),
        )

    def reconcile_deps(
        self, run_seconds: float, on_recorded: Callable[[SendIntent], Awaitable[None]] | None = None
    ) -> ReconcileDeps:
        """What a reconciler run of at most ``run_seconds`` works with: the store serves as intents,
        records and results, and keeps an intent whose outcome is unknown among the poison."""
        settings, store = self.settings, self.store()
        return ReconcileDeps(
            store,
            self.acs(),
            store,
            store,
            dt.timedelta(days=settings.retention_days),
            claim=dt.timedelta(seconds=run_seconds + settings.send_deadline_seconds),
            budget=run_seconds,
            poison=store.record_poison,
            on_recorded=on_recorded,
        )

    def campaigns(self) -> CampaignClients:
        """The campaign table, chunk queue and attachment blobs for the running event loop."""
        self._same_loop()
        if self._campaigns is None:
            settings = self.settings
            if not (settings.campaign_storage_connection_string or settings.campaign_storage_account):
                raise CampaignNotConfigured("AzureWebJobsStorage")
            self._campaigns = CampaignClients.build(
                _table_service(settings),
                settings.table_prefix + CAMPAIGN_TABLE,
                settings.campaign_storage_connection_string,
                settings.campaign_storage_account,
                settings.storage_timeout_seconds,
            )
        return self._campaigns

    def throttle(self) -> SendThrottle:
        """The per-sender send throttle (``CAMPAIGN_SENDS_PER_SECOND``), shared by every instance."""
        self._same_loop()
        if self._throttle is None:  # the slots are shared through the campaigns' table by every instance
            self._throttle = SendThrottle(self.settings.campaign_sends_per_second, slots=self.campaigns().table)
        return self._throttle

    async def aclose(self) -> None:
        """Close the clients (for tests and orderly shutdown)."""
        if self._campaigns is not None:
            await self._campaigns.close()
            self._campaigns = None
        if self._store is not None:
            await self._store.close()
        if self._acs is not None:
            await self._acs.aclose()
        if self._publishing is not None:
            await self._publishing.close()
        if isinstance(self._publisher, EventGridStatusPublisher):
            await self._publisher.close()
        self._store, self._acs, self._loop = None, None, None
        self._publisher, self._publishing = None, None


class CrashAfterAcs:
    """A test-only fault: once ACS has answered a send, the worker dies as a killed one would,
    before any record is written (the reconciler must finish the send from its intent)."""

    def __init__(self, inner: MmsSender) -> None:
        self._inner = inner

    async def send_mms(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        await self._inner.send_mms(payload)
        os._exit(70)


def _table_service(settings: Settings) -> TableServiceClient:
    timeout = settings.storage_timeout_seconds
    options: dict[str, Any] = {
        "retry_total": _STORAGE_RETRIES,
        "connection_timeout": timeout,
        "read_timeout": timeout,
        # Storage is reached directly, never through an HTTP proxy from the environment: with env
        # settings on, aiohttp re-reads ~/.netrc and the proxy variables in a thread on *every*
        # request, which profiling showed as the largest cost of ingest (docs/benchmarks.md).
        "use_env_settings": False,
    }
    if settings.storage_connection_string:
        return TableServiceClient.from_connection_string(settings.storage_connection_string, **options)
    from azure.identity.aio import DefaultAzureCredential

    assert settings.storage_table_endpoint is not None
    return TableServiceClient(settings.storage_table_endpoint, credential=DefaultAzureCredential(), **options)


def _token_key(settings: Settings) -> bytes | None:
    """``QUERY_TOKEN_KEY``; unset, the store makes a random key on first use and keeps it in storage."""
    return settings.query_token_key.encode() if settings.query_token_key else None


RUNTIME = Runtime()
