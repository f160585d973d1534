"""The ``OptOuts`` table: one entity per (sender, recipient) pair.

PartitionKey is the sender, RowKey the recipient, both through :func:`.encoding.table_key`. A pair
that opted back in keeps its entity (``optedOut`` false): it is what makes a late, older STOP lose.
The send-time check reads a chunk's recipients in one query: the sender's partition, RowKeys
between the chunk's lowest and highest key, ``optedOut eq true``; four comparisons, within Azure
Table's limit of 15 per filter (a RowKey ``or`` per recipient would pass it at 15 recipients).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient

from ...domain.optout import OptOut, OptOutSource, apply
from ...service.ports import StorageConflict
from .encoding import MAX_CONFLICT_RETRIES, iso, json_safe, parse_time, table_key
from .tokens import TokenSealing

OPTOUTS_TABLE = "OptOuts"
MAX_CHUNK_RECIPIENTS = 100


def _entity(state: OptOut) -> dict[str, Any]:
    return {
        "PartitionKey": table_key(state.sender),
        "RowKey": table_key(state.recipient),
        "sender": json_safe(state.sender),
        "recipient": json_safe(state.recipient),
        "optedOut": state.opted_out,
        "source": state.source.value,
        "keyword": state.keyword,
        "changedAt": iso(state.changed_at),
        "changedTicks": state.changed_extra_ticks,
    }


def _state(entity: Mapping[str, Any]) -> OptOut:
    return OptOut(
        sender=str(entity["sender"]),
        recipient=str(entity["recipient"]),
        opted_out=bool(entity["optedOut"]),
        source=OptOutSource(str(entity["source"])),
        keyword=entity.get("keyword"),
        changed_at=parse_time(str(entity["changedAt"])),
        changed_extra_ticks=int(entity.get("changedTicks") or 0),
    )


class OptOutTables:
    """The ``OptOuts`` table; listing tokens are sealed with the store's key (``sealing``)."""

    def __init__(self, table: TableClient, sealing: TokenSealing, timeout_seconds: float) -> None:
        self._table = table
        self._sealing = sealing
        self._timeout = timeout_seconds
        self._ready: asyncio.Task[None] | None = None
        self.queries = 0  # requests made by opted_out_among, for the benchmark's per-chunk figure

    async def _ensure(self) -> None:
        if self._ready is None or (self._ready.done() and self._ready.exception() is not None):
            self._ready = asyncio.ensure_future(self._create())
        await asyncio.shield(self._ready)

    async def _create(self) -> None:
        try:
            with contextlib.suppress(ResourceExistsError):
                await self._table.create_table()
        except (AzureError, OSError) as exc:
            raise self._sealing._lost(exc) from exc

    async def _read(self, sender: str, recipient: str) -> tuple[OptOut | None, str | None]:
        try:
            async with asyncio.timeout(self._timeout):
                entity = await self._table.get_entity(table_key(sender), table_key(recipient))
        except ResourceNotFoundError:
            return None, None
        except (AzureError, TimeoutError, OSError) as exc:
            raise self._sealing._lost(exc) from exc
        return _state(entity), str(entity.metadata["etag"])

    async def get_pair(self, sender: str, recipient: str) -> OptOut | None:
        await self._ensure()
        return (await self._read(sender, recipient))[0]

    async def apply_change(self, change: OptOut) -> OptOut:
        """Read, :func:`apply`, write only if the state changed: insert when absent, else replace under
        the ETag read. A lost race reads again, so two racing changes end in the later one."""
        await self._ensure()
        for _ in range(MAX_CONFLICT_RETRIES):
            current, etag = await self._read(change.sender, change.recipient)
            decided = apply(current, change)
            if decided == current:
                return decided
            try:
                async with asyncio.timeout(self._timeout):
                    if etag is None:
                        await self._table.create_entity(_entity(decided))
                    else:
                        await self._table.update_entity(
                            _entity(decided),
                            mode=UpdateMode.REPLACE,
                            etag=etag,
                            match_condition=MatchConditions.IfNotModified,
                        )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                continue
            except (AzureError, TimeoutError, OSError) as exc:
                raise self._sealing._lost(exc) from exc
            return decided
        raise StorageConflict("opt-out pair kept changing")

    async def list_sender(
        self, sender: str, page_size: int, continuation_token: str | None
    ) -> tuple[list[OptOut], str | None]:
        await self._ensure()
        key = await self._sealing._sealing_key()
        partition = table_key(sender)
        seal, open_ = TokenSealing._seal_token, TokenSealing._open_token
        position = open_(key, continuation_token, partition, None, kind="optouts") if continuation_token else None
        try:
            pages = self._table.query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition}, results_per_page=page_size
            ).by_page(continuation_token=position)  # type: ignore[arg-type]  # the Tables pager takes its dict token
            entities = [e async for e in await anext(pages)]
            next_position = pages.continuation_token  # type: ignore[attr-defined]
        except StopAsyncIteration:
            entities, next_position = [], None
        except (AzureError, OSError) as exc:
            raise self._sealing._lost(exc) from exc
        token = seal(key, next_position, partition, None, kind="optouts") if next_position else None
        return [_state(e) for e in entities], token

    async def opted_out_among(self, sender: str, recipients: Sequence[str]) -> frozenset[str]:
        """One query for a chunk: the opted-out pairs of ``sender`` between the chunk's lowest and
        highest RowKey, kept when they are in the chunk. More pages come back only when over 1,000
        opted-out numbers of this sender lie between those two keys."""
        if len(recipients) > MAX_CHUNK_RECIPIENTS:
            raise ValueError(f"a chunk holds at most {MAX_CHUNK_RECIPIENTS} recipients")
        if not recipients:
            return frozenset()
        await self._ensure()
        wanted = {table_key(r): r for r in recipients}
        parameters = {"pk": table_key(sender), "lo": min(wanted), "hi": max(wanted)}
        self.queries += 1
        try:
            async with asyncio.timeout(self._timeout):
                found = [
                    e
                    async for e in self._table.query_entities(
                        "PartitionKey eq @pk and RowKey ge @lo and RowKey le @hi and optedOut eq true",
                        parameters=parameters,
                        select=["RowKey"],
                    )
                ]
        except (AzureError, TimeoutError, OSError) as exc:
            raise self._sealing._lost(exc) from exc
        return frozenset(wanted[e["RowKey"]] for e in found if e["RowKey"] in wanted)
