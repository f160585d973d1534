"""How an azure-core storage error is classified, for the records' tables and the campaigns' alike.

- a 4xx other than 404, 408, 409, 412 and 429 is :class:`StorageRejected` (refused for good, never
  retried; the routes answer 500);
- anything else (5xx, timeouts, connection failures, a throttled or conflicting write, a table or
  container gone) is :class:`StorageUnavailable` (may pass on retry; the routes answer 503);
- a missing table (``TableNotFound``) also tells the caller to forget that it created its tables,
  so that the next call creates them again (:func:`table_missing`).
"""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError

from ..service.ports import StorageRejected, StorageUnavailable

# 404: a table gone (recreated on the next try); 408/429: slow or throttled; 409/412: a lost race.
TRANSIENT_STATUS = frozenset({404, 408, 409, 412, 429})


def table_missing(exc: BaseException) -> bool:
    """The error says the table does not exist (the Table service's ``TableNotFound`` error code)."""
    return getattr(exc, "error_code", None) == "TableNotFound" or "TableNotFound" in str(exc)


def classify(exc: BaseException) -> StorageUnavailable | StorageRejected:
    """The port's exception for a storage error: rejected for good, or unavailable for now."""
    status = getattr(exc, "status_code", None)
    permanent = isinstance(status, int) and 400 <= status < 500 and status not in TRANSIENT_STATUS
    if isinstance(exc, HttpResponseError) and permanent:
        return StorageRejected(str(getattr(exc, "error_code", None) or status))
    return StorageUnavailable(type(exc).__name__)
