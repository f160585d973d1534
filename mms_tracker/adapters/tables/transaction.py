"""An entity-group transaction (``$batch``) without the SDK's ``email``-based multipart code.

``TableClient.submit_transaction`` encodes the multipart body through the ``email`` package and
decodes the response the same way, with a thread pool per response: most of its CPU per
request (issue 28). :func:`submit_transaction` writes the very same bytes with plain string
building, sends them through the table client's own pipeline (auth, retries, transport), and
reads a ``202`` by its status lines and ETags. Any error is handed to the SDK's own decoding of
the same response, so what is raised is exactly what the SDK raises.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote
from uuid import uuid4
from wsgiref.handlers import format_date_time

from azure.core import MatchConditions
from azure.core.rest import HttpRequest
from azure.core.serialization import AzureJSONEncoder
from azure.core.tracing.decorator_async import distributed_trace_async
from azure.data.tables import TableEntity, UpdateMode
from azure.data.tables._base_client import extract_batch_part_metadata
from azure.data.tables._error import (
    RequestTooLargeError,
    TableTransactionError,
    _decode_error,
    _validate_tablename_error,
)
from azure.data.tables._generated._vendor import prep_if_match
from azure.data.tables._policies import StorageHeadersPolicy
from azure.data.tables._serialize import _add_entity_properties, _get_match_condition
from azure.data.tables._table_batch import TableBatchOperations
from azure.data.tables.aio import TableClient

_CRLF = "\r\n"
_ACCEPT_JSON = "application/json"
_ACCEPT_MINIMAL = "application/json;odata=minimalmetadata"
_OPTIONS = frozenset({"mode", "etag", "match_condition"})
_KINDS = frozenset({"create", "update", "upsert", "delete"})


async def submit_transaction(table: TableClient, operations: Iterable[tuple[Any, ...]]) -> list[Mapping[str, Any]]:
    """Commit ``operations`` as one transaction, as ``table.submit_transaction(operations)`` does.

    Each operation is ``(kind, entity)`` or ``(kind, entity, options)``; ``kind`` is ``create``,
    ``update``, ``upsert`` or ``delete``, and ``options`` holds ``mode`` (``merge`` or
    ``replace``), ``etag`` and ``match_condition``, as the SDK takes them. The result is one
    mapping per operation (``{"etag": ...}`` when the service returned one), and every error is
    the SDK's: ``ValueError``/``TypeError`` for a bad operation, ``TableTransactionError`` (its
    ``index`` naming the failed operation), ``RequestTooLargeError`` on 413, the SDK's mapped
    ``HttpResponseError`` subclasses otherwise. A Cosmos endpoint, an empty transaction and any
    other per-operation option go to the SDK itself.
    """
    operations = list(operations)
    if not operations or table._cosmos_endpoint or not all(map(_lean, operations)):
        return await table.submit_transaction(operations)
    return await _submit(table, operations)


@distributed_trace_async(name_of_span="TableClient.submit_transaction")  # the span the SDK's method makes
async def _submit(table: TableClient, operations: list[tuple[Any, ...]]) -> list[Mapping[str, Any]]:
    base = f"{table.scheme}://{table._primary_hostname}"
    path = base + "/" + quote(table.table_name, safe="")
    date = format_date_time(time.time())
    changeset = f"changeset_{uuid4()}"
    parts: list[str] = []
    partition: Any = None
    for index, operation in enumerate(operations):
        kind, entity = operation[0], operation[1]
        options = operation[2] if len(operation) == 3 else {}
        if not isinstance(kind, str) or kind.lower() not in _KINDS:  # checked first, as the SDK does
            raise ValueError(f"Unrecognized operation: {kind}")
        if "PartitionKey" not in entity or "RowKey" not in entity:
            raise ValueError("PartitionKey and/or RowKey were not provided in entity")
        if index == 0:
            partition = entity["PartitionKey"]
        elif entity["PartitionKey"] != partition:
            raise ValueError("Partition Keys in the batch must all be the same.")
        try:
            request = _part(kind.lower(), entity, options, path, date)
        except TypeError as exc:
            raise TypeError(
                "The value of 'operations' must be an iterator or async iterator "
                "of Tuples. Please check documentation for correct Tuple format."
            ) from exc
        parts.append(
            f"--{changeset}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {index}\r\n\r\n{request}"
        )
    batch = f"batch_{uuid4()}"
    body = (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        + _CRLF.join(parts)
        + f"\r\n--{changeset}--\r\n\r\n--{batch}--\r\n"
    ).encode("latin-1")
    outer = HttpRequest(
        method="POST",
        url=f"{base}/$batch",
        headers={
            "x-ms-version": table.api_version,
            "DataServiceVersion": "3.0",
            "MaxDataServiceVersion": "3.0;NetFx",
            "Content-Type": f"multipart/mixed; boundary={batch}",
            "Accept": _ACCEPT_JSON,
        },
        content=body,
    )
    response = await table._client.send_request(outer, stream=True)
    await response.read()
    results = _read_parts(response.status_code, response.headers.get("Content-Type", ""), response.content)
    if results is None or len(results) != len(operations):
        return await _decode_as_the_sdk(table, operations, response)
    return results


def _lean(operation: tuple[Any, ...]) -> bool:
    """Whether this module writes ``operation`` itself (the options the app uses), or the SDK does."""
    if len(operation) == 2:
        return True
    options = operation[2]
    allowed = {"mode"} if operation[0] == "upsert" else _OPTIONS
    return len(operation) == 3 and isinstance(options, Mapping) and allowed >= options.keys()


def _part(kind: str, entity: Mapping[str, Any], options: Mapping[str, Any], path: str, date: str) -> str:
    """One operation as the ``application/http`` request the SDK's batch writes for it."""
    etag = options.get("etag")
    match_condition = options.get("match_condition")
    if kind == "create":
        return _request("POST", path, _ACCEPT_MINIMAL, None, _add_entity_properties(entity), date)
    if kind == "delete" and match_condition and not etag and isinstance(entity, TableEntity):
        etag = entity.metadata.get("etag")  # the SDK's update never reaches its own copy of this
    url = _entity_url(path, entity)
    if kind == "delete":
        condition = _get_match_condition(etag=etag, match_condition=match_condition or MatchConditions.Unconditionally)
        return _request("DELETE", url, _ACCEPT_MINIMAL, prep_if_match(etag, condition), None, date)
    properties = _add_entity_properties(entity)
    if_match = None
    if kind == "update":
        condition = _get_match_condition(etag=etag, match_condition=match_condition or MatchConditions.Unconditionally)
        if_match = prep_if_match(etag, condition)
    mode = options.get("mode", UpdateMode.MERGE)
    if mode == UpdateMode.REPLACE:
        method = "PUT"
    elif mode == UpdateMode.MERGE:
        method = "PATCH"
    else:
        raise ValueError(f"Mode type '{mode}' is not supported.")
    return _request(method, url, _ACCEPT_JSON, if_match, properties, date)


def _entity_url(path: str, entity: Mapping[str, Any]) -> str:
    keys = []
    for name in ("PartitionKey", "RowKey"):
        try:
            keys.append(quote(entity[name].replace("'", "''"), safe=""))
        except AttributeError as exc:
            raise TypeError("PartitionKey or RowKey must be of type string.") from exc
    return f"{path}(PartitionKey='{keys[0]}',RowKey='{keys[1]}')"


def _request(method: str, url: str, accept: str, if_match: str | None, properties: Any, date: str) -> str:
    """The request line, headers and body, in the order ``http.client`` serialises the SDK's request."""
    head = f"{method} {url} HTTP/1.1\r\n"
    text = ""
    if properties is not None:
        text = json.dumps(properties, cls=AzureJSONEncoder)
        head += f"Content-Type: application/json\r\nContent-Length: {len(text)}\r\n"
    head += f"x-ms-version: 2019-02-02\r\nDataServiceVersion: 3.0\r\nAccept: {accept}\r\n"
    if if_match is not None:
        head += f"If-Match: {if_match}\r\n"
    return f"{head}x-ms-date: {date}\r\nDate: {date}\r\n\r\n{text}"


def _read_parts(status: int, content_type: str, content: bytes) -> list[Mapping[str, Any]] | None:
    """Each part's ``{"etag": ...}`` from a ``202`` whose parts are all 2xx; ``None`` otherwise.

    The response is one changeset: ``--batchresponse_...``, a ``multipart/mixed`` header naming
    the changeset boundary, then one ``application/http`` part per operation.
    """
    if status != 202 or not content_type.startswith("multipart/mixed"):
        return None
    marker = b"boundary="
    at = content.find(marker)
    if at < 0:
        return None
    changeset = b"--" + content[at + len(marker) : content.index(b"\r\n", at)].strip()
    results: list[Mapping[str, Any]] = []
    for chunk in content.split(changeset)[1:]:
        if chunk.startswith(b"--"):
            break
        _, _, response = chunk.partition(b"\r\n\r\n")
        head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        code = head[0][9:12]
        if not head[0].startswith("HTTP/1.1 ") or not code.isdigit() or not 200 <= int(code) < 300:
            return None
        metadata: dict[str, Any] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "etag":
                metadata["etag"] = value.strip()
        results.append(metadata)
    return results


async def _decode_as_the_sdk(
    table: TableClient, operations: list[tuple[Any, ...]], response: Any
) -> list[Mapping[str, Any]]:
    """Decode a response this module could not read with the SDK's code (``_batch_send``'s).

    That is every error: what is raised is the SDK's, from the same response.

    The SDK's part decoding needs the sub-requests on the response's request; they are built
    here, only on this path, by the SDK's own batch builder.
    """
    if response.status_code == 413:
        raise _decode_error(
            response, error_message="The transaction request was too large", error_type=RequestTooLargeError
        )
    if response.status_code != 202:
        decoded = _decode_error(response)
        _validate_tablename_error(decoded, table.table_name)
        raise decoded
    batch = TableBatchOperations(
        config=table._client._config,
        endpoint=f"{table.scheme}://{table._primary_hostname}",
        table_name=table.table_name,
        is_cosmos_endpoint=False,
    )
    for operation in operations:
        batch.add_operation(operation)
    policies = [StorageHeadersPolicy()]
    changeset = HttpRequest("POST", "")
    changeset.set_multipart_mixed(*batch.requests, policies=policies)
    response.request.set_multipart_mixed(changeset, policies=policies)
    parts = []
    async for part in response.parts():
        await part.read()
        parts.append(part)
    error_parts = [p for p in parts if not 200 <= p.status_code < 300]
    if not error_parts:
        return [extract_batch_part_metadata(p) for p in parts]
    if error_parts[0].status_code == 413:
        raise _decode_error(
            response, error_message="The transaction request was too large", error_type=RequestTooLargeError
        )
    decoded = _decode_error(response=error_parts[0], error_type=TableTransactionError)
    _validate_tablename_error(decoded, table.table_name)
    raise decoded


def _too_large(response: Any) -> Exception:
    error: Exception = _decode_error(
        response, error_message="The transaction request was too large", error_type=RequestTooLargeError
    )
    return error
