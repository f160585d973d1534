"""Tracking storage on Azure Table Storage (azure-data-tables, async client).

Tables (all prefixed with ``TRACKING_TABLE_PREFIX``; design notes in ``docs/storage.md``):

- ``RecordsV2``: ``PartitionKey=<tag>|<shard>``, ``RowKey=r|<messageId>``: the whole record with
  its report history; ``RowKey=c``: the shard's counters, changed in the record's transaction.
- ``IdsV2``: ``PartitionKey=<messageId>``, ``RowKey=p``: the record's partition, for readers by id.
- ``Due``: ``PartitionKey=<hour the message falls due for expiry>`` (or ``r<day>`` for retention),
  ``RowKey=<messageId>``; the timers read only the buckets that are due.
- ``Poison``: ``PartitionKey=<day>``, ``RowKey=<event id>``; events that can never be processed.
- ``Requests``: ``PartitionKey=<client repeatabilityRequestId>``, ``RowKey="result"``; the first
  answer for a client's id. Partition ``meta`` (never a UUID) holds the generated token key.
- ``Intents``: ``PartitionKey=<minute>``, ``RowKey=<intent id>``; sends in flight, written
  before the ACS call and removed once their records are written (the reconciler finishes the rest).

Keys are percent-encoded, so any tag or id is a valid key; a value whose encoding would pass
:data:`MAX_KEY_CHARS` is keyed by its SHA-256 instead (the original is kept in a property).
Storage errors are classified: timeouts, 5xx, 408, 429 and connection errors are transient
(:class:`StorageUnavailable`); 409 and 412 go back to the concurrency loop; any other refusal
is permanent (:class:`StorageRejected`, with the service's error code) and never retried.
"""

from __future__ import annotations

from .expiry import ExpiryTables
from .intents import IntentTables
from .poison import PoisonTables
from .records import RecordTables
from .retention import RetentionTables
from .send_results import SendResultTables


class TableStore(RecordTables, ExpiryTables, RetentionTables, SendResultTables, PoisonTables, IntentTables):
    """The tracking store: every table of the app behind one object (the ``TrackingStore`` port and more)."""
