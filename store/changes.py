"""What people changed in v2, so that late v1 writes never overwrite it (PRODUCT.md promise 13).

Every v2 write by people of an item, setting or member row sets ``CHANGED_AT`` (ISO time) on
the row, creation included; every such delete also writes a tombstone (``GONE#<SK>`` in the
same partition) in the same transaction. The migration's copy and the late-write sync never
write either, so a row carrying the marker, or a key with a tombstone, is people's and wins.

Tombstones are written in every workspace, not only the migrated one: knowing a workspace's
origin would cost a read on every delete, and a tombstone costs a few bytes once per deleted
row (item ids are random, so a tombstone never stands in the way of a new item).
"""

from __future__ import annotations

from typing import Any

from . import keys
from .db import Database, s

CHANGED_AT = "v2ChangedAt"


def tombstone_put(db: Database, row_key: keys.Key, now: str) -> dict[str, Any]:
    """A TransactWriteItems Put of the tombstone of a row people are deleting."""
    return {
        "Put": {
            "TableName": db.table,
            "Item": {**keys.tombstone(row_key), "deletedAt": s(now), CHANGED_AT: s(now)},
        }
    }
