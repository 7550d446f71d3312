"""Reading v1: the item rows by Scan, the small SETTINGS and MEMBERS partitions by Query."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from store import keys
from store.db import Database, RawItem, s

SCAN_PAGE_LIMIT = 200


def v1_partition(db: Database, pk: str) -> list[RawItem]:
    """All rows of a small v1 partition (SETTINGS or MEMBERS), strongly consistent."""
    return db.query_all(
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": s(pk)},
        ConsistentRead=True,
    )


def _item_scan(
    db: Database, segment: int, total_segments: int, **params: Any
) -> Iterator[dict[str, Any]]:
    """Every page of a Scan for v1 item rows (of one segment), following LastEvaluatedKey."""
    params = {
        "TableName": db.table,
        "FilterExpression": "begins_with(PK, :prefix) AND SK = :sk",
        "ExpressionAttributeValues": {":prefix": s(keys.V1_ITEM_PREFIX), ":sk": s(keys.V1_ITEM_SK)},
        # Strongly consistent: every v1 write completed before the scan began is seen.
        "ConsistentRead": True,
        **params,
    }
    if total_segments > 1:
        params.update(Segment=segment, TotalSegments=total_segments)
    while True:
        page = db.client.scan(**params)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def scan_v1_items(
    db: Database,
    *,
    segment: int = 0,
    total_segments: int = 1,
    start_key: dict[str, Any] | None = None,
    page_limit: int = SCAN_PAGE_LIMIT,
) -> Iterator[tuple[list[RawItem], dict[str, Any] | None]]:
    """Pages of v1 item rows with the key to resume after each; None once the end is reached."""
    start = {"ExclusiveStartKey": start_key} if start_key else {}
    for page in _item_scan(db, segment, total_segments, Limit=page_limit, **start):
        yield page.get("Items", []), page.get("LastEvaluatedKey")


def has_v1_data(db: Database) -> bool:
    """Whether any v1 team data exists; on a fresh install the table is nearly empty."""
    if any(db.has_rows(pk, consistent=True) for pk in (keys.V1_MEMBERS_PK, keys.V1_SETTINGS_PK)):
        return True
    return any(rows for rows, _ in scan_v1_items(db, page_limit=1000))


def count_v1(db: Database, segments: int = 4) -> dict[str, int]:
    """Exact v1 counts (a full Scan for items, run in parallel segments)."""

    def count_segment(segment: int) -> int:
        return sum(page["Count"] for page in _item_scan(db, segment, segments, Select="COUNT"))

    # The two small partitions are read beside the Scan segments: one round trip's wait.
    with ThreadPoolExecutor(max_workers=segments + 2) as pool:
        settings = pool.submit(v1_partition, db, keys.V1_SETTINGS_PK)
        members = pool.submit(v1_partition, db, keys.V1_MEMBERS_PK)
        items = sum(pool.map(count_segment, range(segments)))
        return {
            "items": items,
            "settings": len(settings.result()),
            "members": len(members.result()),
        }
