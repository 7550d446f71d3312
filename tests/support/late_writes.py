"""What a v1 server still running during a rolling deploy writes, for late-write tests."""

from __future__ import annotations

from store import keys
from store.db import Database, now_iso, s
from tests.support.helpers import scan_all


def v1_item_ids(database: Database) -> list[str]:
    return sorted(
        r["PK"]["S"].removeprefix(keys.V1_ITEM_PREFIX)
        for r in scan_all(database)
        if r["PK"]["S"].startswith(keys.V1_ITEM_PREFIX) and r["SK"]["S"] == keys.V1_ITEM_SK
    )


def v1_edit(database: Database, item_id: str, title: str) -> None:
    """What a v1 server does on an edit: a new title and updatedAt, every other attribute kept."""
    database.client.update_item(
        TableName=database.table,
        Key=keys.v1_item(item_id),
        UpdateExpression="SET title = :t, updatedAt = :now",
        ExpressionAttributeValues={":t": s(title), ":now": s(now_iso())},
    )


def v1_insert(database: Database, item_id: str, title: str = "late insert") -> None:
    now = now_iso()
    row = {
        **keys.v1_item(item_id),
        "title": s(title),
        "status": s("open"),
        "createdAt": s(now),
        "updatedAt": s(now),
        "createdBy": s("u-v1"),
    }
    database.client.put_item(TableName=database.table, Item=row)


def v1_delete(database: Database, item_id: str) -> None:
    database.client.delete_item(TableName=database.table, Key=keys.v1_item(item_id))
