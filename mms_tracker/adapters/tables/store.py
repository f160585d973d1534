"""Tracking storage on Azure Table Storage (azure-data-tables, async client).

Tables (all prefixed with ``TRACKING_TABLE_PREFIX``; the layout and its reasons in ``docs/storage.md``):

- ``RecordsV2``: a record per message in its tag's shard (``<tag>|<shard>``, ``r|<messageId>``),
  and each shard's counters (``c``: statuses, latency buckets, failure reasons).
- ``IdsV2``: ``<messageId>`` -> the record's partition, for readers that know only the id.
- ``Due``: the expiry hour buckets and the retention day buckets, with their cursors.
- ``Poison``: ``PartitionKey=<day>``, ``RowKey=<event id>``; events that can never be processed.
- ``Requests``: the first answer for a client's ``repeatabilityRequestId``; partition ``meta``
  holds the generated token key.
- ``Tags``: one row per tag with ``lastActivityAt``, for listing the tags by activity.

Keys are percent-encoded, so any tag or id is a valid key; a value whose encoding would pass
:data:`MAX_KEY_CHARS` is keyed by its SHA-256 instead (the original is kept in a property).
Storage errors are classified: timeouts, 5xx, 408, 429 and connection errors are transient
(:class:`StorageUnavailable`); 409 and 412 go back to the concurrency loop; any other refusal
is permanent (:class:`StorageRejected`, with the service's error code) and never retried.
"""

from __future__ import annotations

from .expiry import ExpiryTables
from .poison import PoisonTables
from .records import RecordTables
from .retention import RetentionTables
from .send_results import SendResultTables


class TableStore(RecordTables, ExpiryTables, RetentionTables, SendResultTables, PoisonTables):
    """The tracking store: every table of the app behind one object (the ``TrackingStore`` port and more)."""
