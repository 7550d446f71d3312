"""Conflicts: late v1 writes that v2 refused because people changed that row in v2.

v2 wins (PRODUCT.md promise 13): the v1 write is never applied, and a record of it
(``MIGRATION`` / ``CONFLICT#<sha256 of kind|PK|SK>``) names the v1 key, what v1 did (edit,
insert, delete), when, and what people had done in v2 (changed, deleted). Writing it again (the
same write seen twice, from two processes) only moves ``at`` and ``action`` to the latest; the
first sighting stays in ``firstAt``. The v1 row itself stays in v1 as the record of what v1
wrote, and cleanup keeps it (it differs from its copy). ``migration sync`` and ``verify`` list
the records, owners see them on ``/migration``.
"""

from __future__ import annotations

from dataclasses import dataclass

from store import keys
from store.db import Database, RawItem, s, text

from .kept import SHOWN_KEY_CHARS

# What v1 did, as reported.
EDIT, INSERT, DELETE = "edit", "insert", "delete"
# What people had done to the row in v2.
CHANGED_IN_V2, DELETED_IN_V2 = "changed in v2", "deleted in v2"


@dataclass(frozen=True)
class Conflict:
    kind: str
    v1_pk: str
    v1_sk: str
    action: str
    at: str
    v2_state: str
    first_at: str

    @classmethod
    def from_row(cls, row: RawItem) -> Conflict:
        return cls(
            kind=text(row, "kind"),
            v1_pk=text(row, "v1PK"),
            v1_sk=text(row, "v1SK"),
            action=text(row, "action"),
            at=text(row, "at"),
            v2_state=text(row, "v2State"),
            first_at=text(row, "firstAt"),
        )


def record_conflict(
    db: Database, kind: str, v1_key: tuple[str, str], action: str, at: str, v2_state: str
) -> None:
    """Write (or refresh) the record of one refused late v1 write; idempotent."""
    pk, sk = v1_key
    db.client.update_item(
        TableName=db.table,
        Key=keys.migration_conflict(kind, pk, sk),
        UpdateExpression="SET #kind = :kind, v1PK = :pk, v1SK = :sk, #action = :action, "
        "#at = :at, v2State = :state, firstAt = if_not_exists(firstAt, :at)",
        # ``kind``, ``action`` and ``at`` are DynamoDB reserved words.
        ExpressionAttributeNames={"#kind": "kind", "#action": "action", "#at": "at"},
        ExpressionAttributeValues={
            ":kind": s(kind),
            ":pk": s(pk[:SHOWN_KEY_CHARS]),
            ":sk": s(sk[:SHOWN_KEY_CHARS]),
            ":action": s(action),
            ":at": s(at),
            ":state": s(v2_state),
        },
    )


def read_conflicts(db: Database, limit: int | None = None) -> tuple[list[Conflict], int]:
    """The first ``limit`` records (all when None) in time order, and how many exist."""
    found: list[Conflict] = []
    total = 0
    for page in db.query_pages(
        KeyConditionExpression="PK = :pk AND begins_with(SK, :prefix)",
        ExpressionAttributeValues={
            ":pk": s(keys.MIGRATION_PK),
            ":prefix": s(keys.MIGRATION_CONFLICT_PREFIX),
        },
        ConsistentRead=True,
    ):
        for row in page.get("Items", []):
            total += 1
            found.append(Conflict.from_row(row))
    found.sort(key=lambda c: (c.at, c.kind, c.v1_pk, c.v1_sk))
    return (found if limit is None else found[:limit]), total
