"""Late v1 writes reach v2: applying one v1 key, and the full comparison.

A v1 server still running during a rolling deploy keeps editing, inserting and deleting v1
rows after the copy passed them (PRODUCT.md promise 13). Each such key is **applied**:

* the v1 row, its v2 copy and the copy's tombstone are read strongly consistent *now* (one
  BatchGetItem for a whole batch of keys), so what v1 wrote in between, and in which order,
  does not matter: applying a key twice, late, or from two processes gives the same result;
* if v2 already equals v1 there is nothing to do;
* if people changed the row in v2 (it carries ``changes.CHANGED_AT``, or its tombstone
  exists), v2 wins: the v1 write becomes a **conflict** record (``conflicts``), never a write;
* otherwise the v1 row's copy is put (or, v1 having deleted it, the copy deleted) on
  condition that the copy is still as read and unmarked (and, where it was absent, in a
  transaction with a check that no tombstone appeared), so a person's edit or delete landing
  in between refuses it. Members keep the workspace's
  ``ownerCount`` in the same transaction, and the ByUser index attributes come with the copy.
  A row v2 cannot store is recorded as kept back (``kept``) instead;
* every key written is read again: the loop ends only when v1 and v2 agree (or a conflict
  or kept-back row is recorded), so a slower process writing an older read of v1 is
  corrected by whichever write came last.

Which keys to apply comes from the table's stream (``stream``) or, where there is none or it
has expired, from the **full comparison** (``catchup``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from store import keys
from store.batch import get_many
from store.changes import CHANGED_AT
from store.db import (
    IF_ABSENT,
    Database,
    RawItem,
    cancellation_reasons,
    condition_failed,
    error_code,
    n,
    now_iso,
    text,
)
from store.workspaces import OWNER_COUNT

from .claim import read_claim
from .conflicts import CHANGED_IN_V2, DELETE, DELETED_IN_V2, EDIT, INSERT, record_conflict
from .flag import read_flag
from .kept import record_action
from .rows import (
    ITEM,
    MEMBER,
    SETTING,
    item_copy,
    member_copy,
    same_data,
    setting_copy,
    storable_problem,
)

log = logging.getLogger(__name__)

# How often one key is read and written again before it is left for the next pass (each
# round is needed only when another writer raced this one).
MAX_ROUNDS = 5
# Keys applied together: three reads per key in one BatchGetItem of at most 100.
KEYS_PER_BATCH = 33
# Writes sent side by side within a batch.
WRITERS = 4


@dataclass(frozen=True)
class Target:
    """Where the migrated rows live, and when the copy began (v1 writes before that moment
    are in the copy already)."""

    workspace_id: str
    workspace_name: str
    copy_started: str


def find_target(db: Database) -> Target | None:
    """The migrated workspace once the flag exists; None before it or without v1 data."""
    flag = read_flag(db)
    if flag is None or flag.workspace_id is None:
        return None
    workspace = db.get(keys.workspace(flag.workspace_id), consistent=True)
    claim = read_claim(db)
    started = claim.started_at if claim else text(workspace, "createdAt", flag.migrated_at)
    return Target(flag.workspace_id, text(workspace, "name"), started)


@dataclass(frozen=True)
class Change:
    """One v1 key to apply: its kind and key, and, from a stream record, what v1 did and when
    (None from the full comparison, which only sees the rows as they are)."""

    kind: str
    v1_pk: str
    v1_sk: str
    action: str | None = None
    at: str | None = None

    @property
    def v1_key(self) -> keys.Key:
        return keys.key(self.v1_pk, self.v1_sk)


def change_for(pk: str, sk: str, action: str | None = None, at: str | None = None) -> Change | None:
    """The Change for a v1 key, or None when the key is not a v1 item, setting or member."""
    if pk.startswith(keys.V1_ITEM_PREFIX) and sk == keys.V1_ITEM_SK:
        return Change(ITEM, pk, sk, action, at)
    if pk == keys.V1_SETTINGS_PK:
        return Change(SETTING, pk, sk, action, at)
    if pk == keys.V1_MEMBERS_PK:
        return Change(MEMBER, pk, sk, action, at)
    return None


def v2_key(target: Target, change: Change) -> keys.Key:
    if change.kind == ITEM:
        return keys.item(target.workspace_id, keys.suffix(change.v1_pk, keys.V1_ITEM_PREFIX))
    if change.kind == SETTING:
        return keys.setting(target.workspace_id, change.v1_sk)
    return keys.member(target.workspace_id, change.v1_sk)


def copy_of(target: Target, kind: str, v1_row: RawItem) -> RawItem:
    if kind == ITEM:
        return item_copy(target.workspace_id, v1_row)
    if kind == SETTING:
        return setting_copy(target.workspace_id, v1_row)
    return member_copy(target.workspace_id, target.workspace_name, v1_row)


@dataclass
class Tally:
    """What applying a set of keys did."""

    applied: int = 0
    unchanged: int = 0
    conflicts: int = 0
    kept: int = 0
    # Keys still racing another writer after MAX_ROUNDS: the next pass takes them again.
    left: list[Change] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.applied += other.applied
        self.unchanged += other.unchanged
        self.conflicts += other.conflicts
        self.kept += other.kept
        self.left.extend(other.left)


def apply_changes(db: Database, target: Target, changes: Iterable[Change]) -> Tally:
    """Apply every change (see the module docstring); the last change per key counts."""
    latest = {(c.v1_pk, c.v1_sk): c for c in changes}
    tally = Tally()
    pending = list(latest.values())
    for start in range(0, len(pending), KEYS_PER_BATCH):
        tally.add(_apply_batch(db, target, pending[start : start + KEYS_PER_BATCH]))
    return tally


def _apply_batch(db: Database, target: Target, batch: list[Change]) -> Tally:
    tally = Tally()
    written: set[tuple[str, str]] = set()
    for _ in range(MAX_ROUNDS):
        if not batch:
            return tally
        wanted: list[keys.Key] = []
        for change in batch:
            copy_key = v2_key(target, change)
            wanted += [change.v1_key, copy_key, keys.tombstone(copy_key)]
        found = get_many(db, wanted)
        again = []
        rows = [found[3 * p : 3 * p + 3] for p in range(len(batch))]
        # Writes to different keys are independent: sent side by side.
        with ThreadPoolExecutor(max_workers=WRITERS) as pool:
            outcomes = list(pool.map(lambda c, r: _apply_one(db, target, c, *r), batch, rows))
        for change, outcome in zip(batch, outcomes, strict=True):
            key = (change.v1_pk, change.v1_sk)
            if outcome == "write":
                written.add(key)
                again.append(change)  # read back: done only once v1 and v2 agree
            elif outcome == "same":
                if key in written:
                    tally.applied += 1
                else:
                    tally.unchanged += 1
            elif outcome == "conflict":
                tally.conflicts += 1
            elif outcome == "kept":
                tally.kept += 1
            else:  # "raced": read again
                again.append(change)
        batch = again
    tally.left.extend(batch)
    return tally


def _apply_one(
    db: Database,
    target: Target,
    change: Change,
    v1_row: RawItem | None,
    v2_row: RawItem | None,
    gone: RawItem | None,
) -> str:
    """Decide and, where needed, write one key: "same", "write", "conflict", "kept" or
    "raced" (a condition refused the write: read again)."""
    copy = copy_of(target, change.kind, v1_row) if v1_row is not None else None
    if v1_row is None and v2_row is None:
        return "same"
    if v1_row is not None and v2_row is not None and same_data(v1_row, v2_row, change.kind):
        return "same"
    if copy is not None and v1_row is not None:
        problem = storable_problem(change.kind, v1_row, copy)
        if problem:
            _transact(db, [record_action(db.table, change.kind, v1_row, problem, now_iso())])
            return "kept"
    peoples = gone is not None or (v2_row is not None and CHANGED_AT in v2_row)
    if peoples:
        if _is_late(target, change, v1_row):
            _record(db, change, v1_row, v2_row)
            return "conflict"
        return "same"  # v2 changed it, and v1 did nothing since the copy: nothing to apply
    actions = _put(db, target, copy, v2_row) if copy else _delete(db, target, v2_row)
    try:
        _send(db, actions)
    except ClientError as exc:
        if condition_failed(exc):
            return "raced"
        if error_code(exc) != "TransactionCanceledException":
            raise
        raced = {"ConditionalCheckFailed", "TransactionConflict", "None", None}
        if set(cancellation_reasons(exc)) - raced:
            raise
        return "raced"
    return "write"


def _send(db: Database, actions: list[Any]) -> None:
    """One conditional PutItem/DeleteItem where one row is written (cheaper than a
    transaction, and DynamoDB Local runs transactions one at a time), else a transaction."""
    if len(actions) > 1:
        _transact(db, actions)
        return
    ((kind, params),) = actions[0].items()
    {"Put": db.client.put_item, "Delete": db.client.delete_item}[kind](**params)


def _is_late(target: Target, change: Change, v1_row: RawItem | None) -> bool:
    """Whether v1 wrote this row after the copy began (only such a write is a conflict).
    A stream record says when; the full comparison has only the v1 row's own ``updatedAt``
    (members have none, and a v1 delete leaves nothing: those it cannot tell, and reports
    nothing)."""
    if change.at is not None:
        return True  # stream records from before the copy are skipped by the reader
    return v1_row is not None and text(v1_row, "updatedAt") > target.copy_started


def _record(db: Database, change: Change, v1_row: RawItem | None, v2_row: RawItem | None) -> None:
    if change.action is not None:
        action = change.action
    elif v1_row is None:
        action = DELETE
    else:
        action = EDIT if v2_row is not None else INSERT
    at = change.at or text(v1_row, "updatedAt") or now_iso()
    state = CHANGED_IN_V2 if v2_row is not None else DELETED_IN_V2
    record_conflict(db, change.kind, (change.v1_pk, change.v1_sk), action, at, state)
    log.warning(
        "late v1 %s of %s %s/%s not applied: the row was %s",
        action,
        change.kind,
        *_shown(change),
        state,
    )


def _shown(change: Change) -> tuple[str, str]:
    return change.v1_pk[:200], change.v1_sk[:200]


def _witness(kind: str, v2_row: RawItem | None) -> tuple[str, dict[str, Any], dict[str, str]]:
    """A condition that holds only while the copy is as read and nobody marked it: absent,
    or unmarked with the same ``role`` (members: keeps ``ownerCount`` exact) or
    ``updatedAt`` (items, settings). Anything else a racing writer changed is caught by
    reading the key again after the write."""
    names = {"#changed": CHANGED_AT}
    if v2_row is None:
        return "attribute_not_exists(PK)", {}, {}
    witness = "role" if kind == MEMBER else "updatedAt"
    names["#w"] = witness
    if witness in v2_row:
        condition = "attribute_exists(PK) AND attribute_not_exists(#changed) AND #w = :seen"
        return condition, {":seen": v2_row[witness]}, names
    condition = (
        "attribute_exists(PK) AND attribute_not_exists(#changed) AND attribute_not_exists(#w)"
    )
    return condition, {}, names


def _owner_delta(before: RawItem | None, after: RawItem | None) -> int:
    return int(text(after, "role") == "owner") - int(text(before, "role") == "owner")


def _owner_update(db: Database, target: Target, delta: int) -> dict[str, Any]:
    """v1 is the authority for rows nobody changed in v2, so the count follows it as is."""
    return {
        "Update": {
            "TableName": db.table,
            "Key": keys.workspace(target.workspace_id),
            "UpdateExpression": "SET #count = #count + :delta",
            "ConditionExpression": "attribute_exists(#count)",
            "ExpressionAttributeNames": {"#count": OWNER_COUNT},
            "ExpressionAttributeValues": {":delta": n(delta)},
        }
    }


def _put(db: Database, target: Target, copy: RawItem, v2_row: RawItem | None) -> list[Any]:
    condition, values, names = _witness(_kind_of(copy), v2_row)
    put: dict[str, Any] = {"TableName": db.table, "Item": copy, "ConditionExpression": condition}
    if names and v2_row is not None:
        put["ExpressionAttributeNames"] = names
    if values:
        put["ExpressionAttributeValues"] = values
    actions: list[Any] = [{"Put": put}]
    if v2_row is None:
        # Absent when read: people may have deleted it since, leaving a tombstone. (Present
        # when read, the condition on the copy as read refuses the put once it is deleted.)
        tombstone = keys.tombstone({keys.PK: copy[keys.PK], keys.SK: copy[keys.SK]})
        check = {"TableName": db.table, "Key": tombstone, "ConditionExpression": IF_ABSENT}
        actions.append({"ConditionCheck": check})
    delta = _owner_delta(v2_row, copy) if _kind_of(copy) == MEMBER else 0
    if delta:
        actions.append(_owner_update(db, target, delta))
    return actions


def _delete(db: Database, target: Target, v2_row: RawItem | None) -> list[Any]:
    assert v2_row is not None  # noqa: S101 - _apply_one returns early when both are gone
    condition, values, names = _witness(_kind_of(v2_row), v2_row)
    delete: dict[str, Any] = {
        "TableName": db.table,
        "Key": {keys.PK: v2_row[keys.PK], keys.SK: v2_row[keys.SK]},
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
    }
    if values:
        delete["ExpressionAttributeValues"] = values
    actions: list[Any] = [{"Delete": delete}]
    delta = _owner_delta(v2_row, None) if _kind_of(v2_row) == MEMBER else 0
    if delta:
        actions.append(_owner_update(db, target, delta))
    return actions


def _kind_of(row: RawItem) -> str:
    sk = row[keys.SK]["S"]
    if sk.startswith(keys.MEMBER_PREFIX):
        return MEMBER
    return SETTING if sk.startswith(keys.SETTING_PREFIX) else ITEM


def _transact(db: Database, actions: list[Any]) -> None:
    db.client.transact_write_items(TransactItems=actions)
