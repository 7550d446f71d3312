"""Catching v2 up with late v1 writes: from the stream where it can, by the full comparison
(here) where it cannot: every v1 row against its copy, and every unmarked copy of the migrated
workspace whose v1 row is gone. Used by ``migration sync``, ``cleanup`` and the app's
background sync."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from store import keys
from store.batch import get_many
from store.changes import CHANGED_AT
from store.db import Database, now_iso, s

from .kept import kept_by_id, record_id
from .rows import ITEM, MEMBER, SETTING, same_data
from .stream import NeedFullComparison, Reader, mark_covered, read_pass, stream_arn
from .sync import Change, Tally, Target, apply_changes, change_for, v2_key
from .v1 import scan_v1_items, v1_partition

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


# --- the full comparison ------------------------------------------------------------------------


def full_comparison(db: Database, target: Target) -> Tally:
    """Every v1 row against its copy, then every unmarked copy whose v1 row is gone; each
    key that differs is applied as above."""
    tally = Tally()
    kept = kept_by_id(db)
    for batch in _v1_batches(db):
        # A row kept back stays in v1 with its record; it is not asked again every pass.
        batch = [c for c in batch if record_id(c.kind, c.v1_key) not in kept]
        tally.add(apply_changes(db, target, _differing(db, target, batch)))
    for batch in _orphan_batches(db, target):
        tally.add(apply_changes(db, target, batch))
    return tally


def _v1_batches(db: Database) -> Iterator[list[Change]]:
    for pk in (keys.V1_SETTINGS_PK, keys.V1_MEMBERS_PK):
        rows = v1_partition(db, pk)
        yield [c for r in rows if (c := change_for(r[keys.PK]["S"], r[keys.SK]["S"]))]
    for rows, _ in scan_v1_items(db, page_limit=100):
        yield [c for r in rows if (c := change_for(r[keys.PK]["S"], r[keys.SK]["S"]))]


def _differing(db: Database, target: Target, batch: list[Change]) -> list[Change]:
    """The changes of a page whose v1 row and copy differ (one BatchGetItem of both)."""
    found = get_many(db, [k for c in batch for k in (c.v1_key, v2_key(target, c))])
    differing = []
    for position, change in enumerate(batch):
        v1_row, v2_row = found[2 * position : 2 * position + 2]
        if v1_row is None or not same_data(v1_row, v2_row, change.kind):
            differing.append(change)
    return differing


def _orphan_batches(db: Database, target: Target) -> Iterator[list[Change]]:
    """Copies without the marker whose v1 row no longer exists (v1 deleted it). Whole rows
    are read: a projection would not lower the read capacity a Query consumes."""
    pk = keys.workspace_pk(target.workspace_id)
    for prefix in (keys.ITEM_PREFIX, keys.SETTING_PREFIX, keys.MEMBER_PREFIX):
        for page in db.query_pages(
            KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
            ExpressionAttributeValues={":pk": s(pk), ":prefix": s(prefix)},
            ConsistentRead=True,
        ):
            unmarked = [r[keys.SK]["S"] for r in page.get("Items", []) if CHANGED_AT not in r]
            changes = [_v1_change_of(prefix, sk) for sk in unmarked]
            found = get_many(db, [c.v1_key for c in changes])
            yield [c for c, row in zip(changes, found, strict=True) if row is None]


def _v1_change_of(prefix: str, v2_sk: str) -> Change:
    name = keys.suffix(v2_sk, prefix)
    if prefix == keys.ITEM_PREFIX:
        return Change(ITEM, keys.V1_ITEM_PREFIX + name, keys.V1_ITEM_SK)
    if prefix == keys.SETTING_PREFIX:
        return Change(SETTING, keys.V1_SETTINGS_PK, name)
    return Change(MEMBER, keys.V1_MEMBERS_PK, name)
