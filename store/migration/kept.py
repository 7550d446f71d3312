"""Kept-back rows: v1 rows v2 cannot store as they are (PRODUCT.md promise 10).

Such a row is never altered and never dropped: it stays in v1, and a record of it
(``MIGRATION`` / ``KEPT#<sha256 of kind|PK|SK>``) names its key and the reason. The record is
written in the same fenced transaction as its page's copies, as an update that keeps the
first ``keptAt``, so writing it again (a resumed run) changes nothing. Operators see the
records in ``migration status`` and ``verify``, owners on ``/migration``; cleanup keeps the
rows they name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from store import keys
from store.db import Database, RawItem, n, number, s, text

# Shown keys are cut here; the byte length of the whole key is kept beside them.
SHOWN_KEY_CHARS = 1024
REASON_CHARS = 500

# Kept-back rows an operator page or command lists; the rest are counted.
SHOWN_KEPT = 50


@dataclass(frozen=True)
class Kept:
    kind: str
    v1_pk: str
    v1_sk: str
    key_bytes: int
    reason: str
    kept_at: str

    @property
    def shortened(self) -> bool:
        """Whether the key shown is cut short (the whole key is ``key_bytes`` long)."""
        return self.key_bytes > len(self.v1_pk.encode()) + len(self.v1_sk.encode())

    @classmethod
    def from_row(cls, row: RawItem) -> Kept:
        return cls(
            kind=text(row, "kind"),
            v1_pk=text(row, "v1PK"),
            v1_sk=text(row, "v1SK"),
            key_bytes=number(row, "v1KeyBytes"),
            reason=text(row, "reason"),
            kept_at=text(row, "keptAt"),
        )


def record_id(kind: str, v1_row: RawItem) -> str:
    """The sort key of a v1 row's record, whether or not it exists."""
    return keys.migration_kept(kind, v1_row[keys.PK]["S"], v1_row[keys.SK]["S"])[keys.SK]["S"]


def record_action(table: str, kind: str, v1_row: RawItem, reason: str, now: str) -> dict[str, Any]:
    """A transaction action that writes the record of one kept-back row (idempotent)."""
    pk, sk = v1_row[keys.PK]["S"], v1_row[keys.SK]["S"]
    return {
        "Update": {
            "TableName": table,
            "Key": keys.migration_kept(kind, pk, sk),
            # Every name through a placeholder: some (like ``kind``) may be reserved words.
            "UpdateExpression": "SET #kind = :kind, #pk = :pk, #sk = :sk, #bytes = :bytes, "
            "#reason = :reason, #at = if_not_exists(#at, :now)",
            "ExpressionAttributeNames": {
                "#kind": "kind",
                "#pk": "v1PK",
                "#sk": "v1SK",
                "#bytes": "v1KeyBytes",
                "#reason": "reason",
                "#at": "keptAt",
            },
            "ExpressionAttributeValues": {
                ":kind": s(kind),
                ":pk": s(pk[:SHOWN_KEY_CHARS]),
                ":sk": s(sk[:SHOWN_KEY_CHARS]),
                ":bytes": n(len(pk.encode()) + len(sk.encode())),
                ":reason": s(reason[:REASON_CHARS]),
                ":now": s(now),
            },
        }
    }


def _pages(db: Database, **params: Any) -> Iterator[dict[str, Any]]:
    return db.query_pages(
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={
            ":pk": s(keys.MIGRATION_PK),
            ":prefix": s(keys.MIGRATION_KEPT_PREFIX),
        },
        ConsistentRead=True,
        **params,
    )


def read_kept(db: Database, limit: int | None = None) -> tuple[list[Kept], int]:
    """The first ``limit`` records (all when None), oldest key first, and how many exist."""
    shown: list[Kept] = []
    total = 0
    for page in _pages(db):
        for row in page.get("Items", []):
            total += 1
            if limit is None or len(shown) < limit:
                shown.append(Kept.from_row(row))
    shown.sort(key=lambda k: (k.kind, k.v1_pk, k.v1_sk))
    return shown, total


def kept_by_id(db: Database) -> dict[str, Kept]:
    """Every record by its sort key (what ``record_id`` gives for a v1 row). Kept-back rows
    are the exceptions of a migration, so this stays small."""
    return {
        row[keys.SK]["S"]: Kept.from_row(row)
        for page in _pages(db)
        for row in page.get("Items", [])
    }


def forget_all(db: Database) -> int:
    """Delete every record, when a run starts the copy over (v1 changed under it): the next
    pass records again what it still cannot store, and a row fixed in v1 meanwhile is no
    longer listed as kept back. Returns how many were deleted."""
    deleted = 0
    for page in _pages(db, ProjectionExpression="PK, SK"):
        for row in page.get("Items", []):
            db.client.delete_item(
                TableName=db.table, Key={keys.PK: row[keys.PK], keys.SK: row[keys.SK]}
            )
            deleted += 1
    return deleted
