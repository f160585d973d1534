"""The opt-out port: one state per (sender, recipient) pair, changed under ETag."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..domain.optout import OptOut


class OptOutStore(Protocol):
    """The opt-out list. Every change goes through :func:`mms_tracker.domain.optout.apply`."""

    async def get_pair(self, sender: str, recipient: str) -> OptOut | None:
        """The pair's state, or None when it never changed."""
        ...

    async def apply_change(self, change: OptOut) -> OptOut:
        """Apply ``change`` to its pair under ETag (retrying on a race) and return the state stored."""
        ...

    async def list_sender(
        self, sender: str, page_size: int, continuation_token: str | None
    ) -> tuple[list[OptOut], str | None]:
        """One page of the sender's pairs (opted out or back in), and a sealed token for the next."""
        ...

    async def opted_out_among(self, sender: str, recipients: Sequence[str]) -> frozenset[str]:
        """Which of ``recipients`` (a send chunk, up to 100) are opted out of ``sender``: one query."""
        ...
