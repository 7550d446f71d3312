"""The floor the migration's copy is measured against, and the other ways to write it.

Every copy here reads the v1 items with the migration's own parallel Scan (4 segments,
pages of 200) and writes them into one new partition, as the migration writes a workspace;
only the write differs (``HOW``). None of them checks anything: they show what each kind of
write costs on this server, which is what the choice in the README rests on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from store import batch, keys
from store.db import Database
from store.migration.v1 import SCAN_PAGE_LIMIT, scan_v1_items

WRITERS = 4

# What each alternative sends per page of copies.
HOW = {
    "batch": "BatchWriteItem, 25 rows a call (the floor; what the copy now uses)",
    "put": "PutItem per row with a condition (attribute_not_exists), 8 at a time",
    "transact": "TransactWriteItems of 100 Puts, no condition",
    "fenced": "TransactWriteItems of 99 Puts + a ConditionCheck on a fence row (the old copy)",
}


def _writer(database: Database, how: str, fence: dict[str, Any]) -> Callable[[list[Any]], None]:
    deadline = time.monotonic() + 3600
    table = database.table

    def batch_write(copies: list[dict[str, Any]]) -> None:
        for chunk in batch.chunk_requests({"PutRequest": {"Item": c}} for c in copies):
            batch.write_chunk(database, chunk, deadline=deadline)

    def put_each(copies: list[dict[str, Any]]) -> None:
        def put(copy: dict[str, Any]) -> None:
            database.client.put_item(
                TableName=table, Item=copy, ConditionExpression="attribute_not_exists(PK)"
            )

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, copies))

    def transact(copies: list[dict[str, Any]]) -> None:
        size = 99 if how == "fenced" else 100
        for start in range(0, len(copies), size):
            actions = [{"Put": {"TableName": table, "Item": c}} for c in copies[start:][:size]]
            if how == "fenced":
                check = {"TableName": table, "Key": fence}
                check["ConditionExpression"] = "attribute_exists(PK)"
                actions.insert(0, {"ConditionCheck": check})
            database.client.transact_write_items(TransactItems=actions)

    return {"batch": batch_write, "put": put_each}.get(how, transact)


def copy_all(database: Database, how: str = "batch") -> str:
    """Scan every v1 item and write a copy of each into a new partition, ``how`` says how;
    the partition key written."""
    target = "FLOOR#" + uuid.uuid4().hex
    fence = {keys.PK: {"S": target}, keys.SK: {"S": "FENCE"}}
    database.client.put_item(TableName=database.table, Item=fence)
    write = _writer(database, how, fence)

    def segment(number: int) -> None:
        for rows, _ in scan_v1_items(
            database, segment=number, total_segments=WRITERS, page_limit=SCAN_PAGE_LIMIT
        ):
            write([{**row, keys.PK: {"S": target}, keys.SK: row[keys.PK]} for row in rows])

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(segment, range(WRITERS)))
    return target
