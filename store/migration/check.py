"""Comparing v1 rows with their v2 copies, and deleting v1 rows that are safely copied."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from store import keys
from store.batch import chunk_requests, get_many, write_chunk
from store.changes import CHANGED_AT
from store.db import Database, RawItem, condition_failed, text

from .bulk import count_prefix, partition_sort_keys
from .claim import read_claim
from .flag import read_flag
from .kept import kept_by_id, record_id
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
from .v1 import scan_v1_items, v1_partition

IDENTICAL = "identical"
MISSING = "missing in v2"
# Not copied because v2 cannot store it as it is; it stays in v1 (and cleanup keeps it).
KEPT_BACK = "kept back"
DIFFERENT = "different"
V1_CHANGED = "v1 changed after the migration"
# People changed (or deleted) the copy in v2: v2 wins, the v1 row stays as it was.
CHANGED_IN_V2 = "changed in v2"
DELETED_IN_V2 = "deleted in v2"
# DynamoDB's limit for one expression string; a longer equality check cannot be sent.
MAX_EXPRESSION = 4096


@dataclass(frozen=True)
class Row:
    kind: str
    v1_key: tuple[str, str]
    v2_key: tuple[str, str]
    verdict: str
    v1: RawItem = field(repr=False, compare=False)
    # Why the row was kept back (only for KEPT_BACK).
    reason: str = ""


def _pairs(
    db: Database, workspace_id: str, workspace_name: str
) -> Iterator[list[tuple[str, RawItem, RawItem]]]:
    yield [
        (SETTING, r, setting_copy(workspace_id, r)) for r in v1_partition(db, keys.V1_SETTINGS_PK)
    ]
    yield [
        (MEMBER, r, member_copy(workspace_id, workspace_name, r))
        for r in v1_partition(db, keys.V1_MEMBERS_PK)
    ]
    for rows, _ in scan_v1_items(db, page_limit=100):
        yield [(ITEM, r, item_copy(workspace_id, r)) for r in rows]


def compare(db: Database, workspace_id: str, migrated_at: str | None) -> Iterator[Row]:
    """Every v1 row with its verdict, page by page (memory grows only with the kept-back
    rows, which are the exceptions)."""
    workspace = db.get(keys.workspace(workspace_id), consistent=True)
    name = text(workspace, "name")
    kept = kept_by_id(db)
    for batch in _pairs(db, workspace_id, name):
        # A copy v2 cannot store is not asked for: its key may be one DynamoDB refuses.
        asked = [p for p in batch if record_id(p[0], p[1]) not in kept and _storable(p)]
        wanted = [{keys.PK: c[keys.PK], keys.SK: c[keys.SK]} for _, _, c in asked]
        found = get_many(db, wanted + [keys.tombstone(k) for k in wanted])
        copies = {id(p[2]): row for p, row in zip(asked, found, strict=False)}
        gone = {id(p[2]) for p, row in zip(asked, found[len(asked) :], strict=True) if row}
        for kind, v1_row, copy in batch:
            record = kept.get(record_id(kind, v1_row))
            v2_row = copies.get(id(copy))
            if record is not None:
                yield _row(kind, v1_row, copy, KEPT_BACK, record.reason)
                continue
            if v2_row is None:
                verdict = DELETED_IN_V2 if id(copy) in gone else MISSING
            elif same_data(v1_row, v2_row, kind):
                verdict = IDENTICAL
            elif CHANGED_AT in v2_row:
                verdict = CHANGED_IN_V2
            elif migrated_at and text(v1_row, "updatedAt") > migrated_at:
                verdict = V1_CHANGED
            else:
                verdict = DIFFERENT
            yield _row(kind, v1_row, copy, verdict)


def _storable(pair: tuple[str, RawItem, RawItem]) -> bool:
    return storable_problem(*pair) is None


def _row(kind: str, v1_row: RawItem, copy: RawItem, verdict: str, reason: str = "") -> Row:
    return Row(
        kind=kind,
        v1_key=(v1_row[keys.PK]["S"], v1_row[keys.SK]["S"]),
        v2_key=(copy[keys.PK]["S"], copy[keys.SK]["S"]),
        verdict=verdict,
        v1=v1_row,
        reason=reason,
    )


def _equality_condition(row: RawItem) -> tuple[str, dict[str, str], dict[str, Any]] | None:
    """A condition that holds only while the row is exactly as we compared it."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    parts = ["attribute_exists(PK)"]
    for position, (name, value) in enumerate(sorted(row.items())):
        if name in (keys.PK, keys.SK):
            continue
        names[f"#a{position}"] = name
        values[f":v{position}"] = value
        parts.append(f"#a{position} = :v{position}")
    expression = " AND ".join(parts)
    if len(expression) > MAX_EXPRESSION:
        return None
    return expression, names, values


def delete_if_unchanged(db: Database, row: RawItem) -> str:
    """Delete one v1 row only if it still equals what was verified; say what happened."""
    condition = _equality_condition(row)
    if condition is None:
        return "kept: too many attributes to check in one condition"
    expression, names, values = condition
    params: dict[str, Any] = {
        "TableName": db.table,
        "Key": {keys.PK: row[keys.PK], keys.SK: row[keys.SK]},
        "ConditionExpression": expression,
    }
    if names:
        params["ExpressionAttributeNames"] = names
        params["ExpressionAttributeValues"] = values
    try:
        db.client.delete_item(**params)
    except ClientError as exc:
        if condition_failed(exc):
            return "kept: changed while cleaning up"
        raise
    return "deleted"


def v2_counts(db: Database, workspace_id: str) -> dict[str, int]:
    return {
        label: count_prefix(db, workspace_id, prefix, consistent=False)
        for label, prefix in (
            ("items", keys.ITEM_PREFIX),
            ("settings", keys.SETTING_PREFIX),
            ("members", keys.MEMBER_PREFIX),
        )
    }


# --- partitions of abandoned attempts ---------------------------------------------------------


@dataclass(frozen=True)
class Abandoned:
    """The partition of an attempt that was given up (``claim.new_attempt``): copies nobody
    sees, since it never gets a WORKSPACE row or members. ``rows``: how many it holds."""

    workspace_id: str
    rows: int


def abandoned_partitions(db: Database) -> list[Abandoned]:
    """Every abandoned attempt's partition that still holds rows, with its row count. The
    flag's workspace and the current attempt's partition are never among them."""
    claim = read_claim(db)
    if claim is None:
        return []
    flag = read_flag(db)
    in_use = {claim.workspace_id, flag.workspace_id if flag else None}
    found = []
    for workspace_id in claim.abandoned:
        if workspace_id in in_use:
            continue
        rows = sum(1 for _ in partition_sort_keys(db, workspace_id))
        if rows:
            found.append(Abandoned(workspace_id, rows))
    return found


class VisiblePartition(Exception):
    """A partition listed as abandoned holds a row people could see; nothing is deleted."""


def delete_abandoned(db: Database, workspace_id: str, *, deadline_seconds: float = 600) -> int:
    """Delete every row of an abandoned attempt's partition; how many were deleted.

    Refuses (VisiblePartition) the flag's workspace, the current attempt's partition, and a
    partition holding a WORKSPACE or member row: only copies nobody can reach are deleted.
    A paused holder of that attempt may still write a copy there afterwards; it is as
    invisible, and the next cleanup deletes it."""
    claim, flag = read_claim(db), read_flag(db)
    if claim is None or workspace_id not in claim.abandoned:
        raise VisiblePartition(f"{workspace_id} is not an abandoned attempt's partition")
    if workspace_id in (claim.workspace_id, flag.workspace_id if flag else None):
        raise VisiblePartition(f"{workspace_id} is the migrated workspace")
    sort_keys = list(partition_sort_keys(db, workspace_id))
    visible = [sk for sk in sort_keys if not sk.startswith(_COPY_PREFIXES)]
    if visible:
        raise VisiblePartition(f"{workspace_id} holds {visible[0]}: people could reach it")
    pk = keys.workspace_pk(workspace_id)
    deadline = time.monotonic() + deadline_seconds
    for chunk in chunk_requests({"DeleteRequest": {"Key": keys.key(pk, sk)}} for sk in sort_keys):
        write_chunk(db, chunk, deadline=deadline)
    return len(sort_keys)


# What an attempt writes before its flag transaction: items and settings, nothing visible.
_COPY_PREFIXES = (keys.ITEM_PREFIX, keys.SETTING_PREFIX)
