"""Catching v2 up with late v1 writes: from the stream where it can, by full comparison where
it cannot. Used by ``migration sync``, ``cleanup`` and the app's background sync."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from store.db import Database, now_iso

from .stream import NeedFullComparison, Reader, mark_covered, read_pass, stream_arn
from .sync import Tally, Target, full_comparison

STREAM, FULL = "stream", "full comparison"
# One pass over the stream applies at most this many records (bounds a request's slice).
PASS_RECORDS = 2000


@dataclass
class CatchUp:
    """What catching up did: how (``via``, and ``why`` it compared every row), what it
    applied, and whether nothing is left (``caught_up``)."""

    via: str
    tally: Tally = field(default_factory=Tally)
    records: int = 0
    caught_up: bool = True
    why: str = ""


def catch_up(
    db: Database,
    target: Target,
    *,
    full: bool = False,
    reader: Reader | None = None,
    deadline: float | None = None,
    max_records: int = PASS_RECORDS,
    until_done: bool = True,
) -> CatchUp:
    """Apply pending late v1 writes for ``target``. From the stream
    unless ``full`` or it cannot show everything; ``until_done`` keeps reading passes until
    one finds nothing more (the command), otherwise one bounded pass (the app)."""
    if not full:
        reader = reader or Reader()
        result = CatchUp(STREAM)
        try:
            while True:
                one = read_pass(
                    db, target, reader, max_records=max_records, deadline=deadline or _far()
                )
                result.tally.add(one.tally)
                result.records += one.records
                result.caught_up = one.caught_up
                if one.tally.left:
                    return result  # still racing another writer: the next run takes them
                past_deadline = deadline is not None and time.monotonic() > deadline
                # Until a pass finds no v1 write (applying writes v2 rows the stream shows).
                if not until_done or past_deadline or (one.caught_up and one.changes == 0):
                    return result
        except NeedFullComparison as exc:
            why = str(exc)
        if not until_done:
            # The app never compares every row inside a request or a poll: the caller
            # decides when that is affordable (``why`` tells it).
            return CatchUp(FULL, caught_up=False, why=why)
    else:
        why = "asked for (--full)"
    return compare_everything(db, target, why)


def compare_everything(db: Database, target: Target, why: str) -> CatchUp:
    """The full comparison, then the stream is followed from its start time on."""
    since = now_iso()
    arn = stream_arn(db)
    tally = full_comparison(db, target)
    if not tally.left:
        mark_covered(db, arn, since)
    return CatchUp(FULL, tally, caught_up=not tally.left, why=why)


def _far() -> float:
    return time.monotonic() + 3600.0
