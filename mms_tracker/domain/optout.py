"""Opt-outs: which replies are keywords, and the one rule that decides a (sender, recipient) pair's state.

A reply counts only when its whole trimmed text is one keyword, compared case-insensitively in
ASCII (so "please stop by" changes nothing, and neither does a look-alike such as a long-s "stop").

Between two changes of one pair, the later ``changedAt`` (a reply's ``receivedTimestamp``, to
100 ns) wins whatever the order of arrival. Ties are broken by a fixed total order, so that
:func:`apply` is a maximum: commutative, associative and idempotent, and any arrival order or
redelivery ends in the same state. At an equal instant an opt-out beats an opt-in (the safe side
for the recipient), then ``source`` ``reply`` beats ``api``, then the keyword in code-point order.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "OPT-OUT", "REVOKE"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})


class OptOutSource(StrEnum):
    """Where a change came from: a recipient's reply, or the API (numbers collected elsewhere)."""

    API = "api"
    REPLY = "reply"


@dataclass(frozen=True)
class Keyword:
    """A recognised keyword, upper-case as listed, and whether it opts out (else it opts in)."""

    word: str
    opts_out: bool


def classify(message: str | None) -> Keyword | None:
    """The keyword a whole message is, or None when the text is anything else."""
    if message is None:
        return None
    word = message.strip()
    if not word.isascii():
        return None
    word = word.upper()
    if word in OPT_OUT_KEYWORDS:
        return Keyword(word, opts_out=True)
    if word in OPT_IN_KEYWORDS:
        return Keyword(word, opts_out=False)
    return None


@dataclass(frozen=True)
class OptOut:
    """The state of one (sender, recipient) pair: the change that decided it.

    ``changed_extra_ticks`` is the 100-ns digit beyond ``changed_at``'s microseconds, as ACS writes
    seven fractional digits. ``keyword`` is None for an API change that named none.
    """

    sender: str
    recipient: str
    opted_out: bool
    source: OptOutSource
    keyword: str | None
    changed_at: dt.datetime
    changed_extra_ticks: int = 0

    def order(self) -> tuple[dt.datetime, int, bool, bool, str]:
        """The total order :func:`apply` keeps the maximum of (see the module docstring)."""
        return (
            self.changed_at,
            self.changed_extra_ticks,
            self.opted_out,
            self.source is OptOutSource.REPLY,
            self.keyword or "",
        )


class PairMismatch(ValueError):
    """A change applied to the state of another pair: a bug in the caller."""


def apply(current: OptOut | None, change: OptOut) -> OptOut:
    """The pair's state after ``change``: whichever of the two is later in :meth:`OptOut.order`."""
    if current is None:
        return change
    if (current.sender, current.recipient) != (change.sender, change.recipient):
        raise PairMismatch("a change of another (sender, recipient) pair")
    return change if change.order() > current.order() else current


def is_opted_out(state: OptOut | None) -> bool:
    """True when the pair must not be sent to (no state: never opted out)."""
    return state is not None and state.opted_out
