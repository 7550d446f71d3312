"""v1 rows that v2 cannot store as they are (promise 10), and a v1 table to hold them.

On a table with v2's indexes DynamoDB refuses some of these rows outright (a Number
``createdAt``), so tests write them into a table as v1 made it (no index) and only then run
what ``db init`` runs, as an operator's deploy does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from store import keys, schema
from store.db import Database, RawItem
from store.items import item_size
from store.migration.rows import item_copy
from tests.support.helpers import create_v1_table

CREATED = {"S": "2024-03-01T10:00:00.000000Z"}
# A workspace id as v2 makes them (uuid4 hex), to size a v2 copy before the migration.
SOME_WORKSPACE = "0" * 32
# An id just long enough that ITEM#<id> is over DynamoDB's 1024-byte sort key limit in v2
# (the v1 key, ITEM#<id> as a partition key, may be 2048 bytes).
LONG_ITEM_ID = "i" * 1020
# A setting name whose v1 sort key fits (1021 bytes) and whose v2 one (SET#...) does not.
LONG_SETTING = "s" * 1021


def v1_table(client: Any) -> Iterator[str]:
    """A table as v1 made it, deleted afterwards (the body of a ``table_name`` fixture)."""
    name = f"v1-{uuid.uuid4().hex[:12]}"
    create_v1_table(client, name)
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    yield name
    client.delete_table(TableName=name)


def db_init(database: Database) -> None:
    """What ``flask db init`` does on the v1 table: add v2's indexes and TTL."""
    schema.ensure_table(database.client, database.table, poll=0.05)


def item(item_id: str, **attributes: dict[str, Any]) -> RawItem:
    return {
        **keys.v1_item(item_id),
        "title": {"S": f"item {item_id[:20]}"},
        "status": {"S": "open"},
        "createdAt": CREATED,
        "updatedAt": CREATED,
        "createdBy": {"S": "u-someone"},
        **attributes,
    }


def member(user_id: str, **attributes: dict[str, Any]) -> RawItem:
    return {
        **keys.v1_member(user_id),
        "email": {"S": f"{user_id}@example.com"},
        "role": {"S": "member"},
        "joinedAt": CREATED,
        **attributes,
    }


# Each un-storable kind of row, with words its reason must contain.
UNSTORABLE: list[tuple[str, RawItem]] = [
    ("createdAt is a number", item("number-created", createdAt={"N": "1709287200"})),
    ("item has a GSI1PK attribute", item("with-gsi", GSI1PK={"S": "USER#u-someone"})),
    ("v2 key would be 1025 bytes", item(LONG_ITEM_ID)),
    (
        "v2 key would be 1025 bytes",
        {**keys.v1_setting(LONG_SETTING), "value": {"S": "x"}, "updatedAt": CREATED},
    ),
    ("member has a GSI1PK attribute", member("u-gsi", GSI1PK={"S": "USER#u-gsi"})),
]
# Copied exactly: workspaceName is a name v2 sets on member rows only.
WITH_WORKSPACE_NAME = item("named", workspaceName={"S": "kept as it is"})


def write(database: Database, rows: list[RawItem]) -> None:
    for row in rows:
        database.client.put_item(TableName=database.table, Item=row)


def sized_item(item_id: str, v2_bytes: int) -> RawItem:
    """A v1 item whose v2 copy is exactly ``v2_bytes`` long (DynamoDB's way of counting)."""
    row = item(item_id, notes={"S": ""})
    missing = v2_bytes - item_size(item_copy(SOME_WORKSPACE, row))
    row["notes"] = {"S": "n" * missing}
    assert item_size(item_copy(SOME_WORKSPACE, row)) == v2_bytes
    return row
