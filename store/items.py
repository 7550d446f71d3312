"""A workspace's items: newest-first pages from the ByCreated index, and writes that touch
only the attributes the form knows, so every other (v1) attribute survives an edit."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from . import keys
from .changes import CHANGED_AT, tombstone_put
from .db import (
    Database,
    RawItem,
    cancellation_reasons,
    condition_failed,
    error_code,
    new_id,
    now_iso,
    put_if_absent,
    s,
    text,
)

STATUSES = ("open", "done")
# The form's fields and the DynamoDB type each must have for the form to edit it.
FORM_FIELDS = {"title": "S", "notes": "S", "tags": "SS", "status": "S"}
# Written by the app itself, never by a form.
SYSTEM_ATTRIBUTES = (keys.PK, keys.SK, "createdAt", "updatedAt", "createdBy", CHANGED_AT)
MAX_ITEM_BYTES = 400 * 1024
# DynamoDB's own accounting of an item differs slightly from any estimate; keep a margin.
SIZE_MARGIN = 2 * 1024
# One page is served by one Query in the usual case; filters that match little may need a few
# more, and this bounds how many before the page is shown with a "keep looking" link.
MAX_QUERIES_PER_PAGE = 4
FILTERED_QUERY_LIMIT = 200
# Non-item rows (the workspace row, invites) share the ByCreated index; read a few extra rows
# so a page is usually full after one Query anyway.
UNFILTERED_SLACK = 10


class ItemGone(Exception):
    """The item was deleted (or never existed)."""


class ItemChanged(Exception):
    """Someone else saved the item after this form was opened."""


class ItemTooLarge(Exception):
    """The row would exceed DynamoDB's 400 KB item limit."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


@dataclass(frozen=True)
class ItemFields:
    """Exactly what a person may set on an item: nothing else is ever bound from a form."""

    title: str
    notes: str = ""
    tags: tuple[str, ...] = ()
    status: str = "open"


@dataclass(frozen=True)
class Item:
    workspace_id: str
    item_id: str
    title: str
    notes: str
    tags: tuple[str, ...]
    status: str
    created_at: str
    updated_at: str
    created_by: str
    # Every attribute the app does not manage, raw, exactly as stored (v1 data).
    other: dict[str, Any] = field(default_factory=dict)
    # Form fields whose stored type the form cannot edit; edits leave them alone.
    locked: frozenset[str] = frozenset()
    raw: RawItem = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ItemPage:
    items: list[Item]
    # Where the next page starts (an ExclusiveStartKey), or None at the end.
    next_key: RawItem | None
    # True when the page stopped early because the query budget ran out, not because the
    # page was full: the filters matched little among the rows read so far.
    searched_partly: bool = False


def item_from_row(row: RawItem) -> Item:
    locked = frozenset(
        name for name, kind in FORM_FIELDS.items() if name in row and next(iter(row[name])) != kind
    )
    other = {
        name: value
        for name, value in row.items()
        if (name not in FORM_FIELDS and name not in SYSTEM_ATTRIBUTES) or name in locked
    }
    tags = () if "tags" in locked else tuple(sorted(row.get("tags", {}).get("SS", [])))
    return Item(
        workspace_id=keys.suffix(row[keys.PK]["S"], keys.WORKSPACE_PREFIX),
        item_id=keys.suffix(row[keys.SK]["S"], keys.ITEM_PREFIX),
        title=text(row, "title"),
        notes=text(row, "notes"),
        tags=tags,
        status=text(row, "status", "open"),
        created_at=text(row, "createdAt"),
        updated_at=text(row, "updatedAt"),
        created_by=text(row, "createdBy"),
        other=other,
        locked=locked,
        raw=row,
    )


# --- size ---------------------------------------------------------------------------------------


def _number_size(value: str) -> int:
    digits = decimal.Decimal(value).as_tuple().digits
    return min(21, (len(digits) + 1) // 2 + 1)


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes DynamoDB counts for one AttributeValue ("Item sizes and formats")."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return _number_size(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode()) for x in inner)
    if kind == "NS":
        return sum(_number_size(x) for x in inner)
    if kind == "BS":
        return sum(len(x) for x in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(x) for x in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(row: Mapping[str, Mapping[str, Any]]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in row.items())


def room_left(row: Mapping[str, Mapping[str, Any]]) -> int:
    return MAX_ITEM_BYTES - SIZE_MARGIN - item_size(row)


def _check_size(row: RawItem) -> None:
    if room_left(row) < 0:
        raise ItemTooLarge(item_size(row))


# --- writes -------------------------------------------------------------------------------------


def _field_values(fields: ItemFields) -> dict[str, dict[str, Any] | None]:
    """Attribute values for the form's fields; None means "remove" (an SS cannot be empty)."""
    return {
        "title": s(fields.title),
        "status": s(fields.status),
        "notes": s(fields.notes) if fields.notes else None,
        "tags": {"SS": sorted(fields.tags)} if fields.tags else None,
    }


def create_item(db: Database, workspace_id: str, fields: ItemFields, user_id: str) -> Item:
    created = now_iso()
    row: RawItem = {
        **keys.item(workspace_id, new_id()),
        "createdAt": s(created),
        "updatedAt": s(created),
        "createdBy": s(user_id),
        CHANGED_AT: s(created),
    }
    row.update({name: value for name, value in _field_values(fields).items() if value})
    _check_size(row)
    if not put_if_absent(db, row):
        # A fresh 128-bit id that already exists: never expected, never overwritten.
        raise RuntimeError("a new item's id is taken")
    return item_from_row(row)


def get_item(db: Database, workspace_id: str, item_id: str) -> Item | None:
    row = db.get(keys.item(workspace_id, item_id), consistent=True)
    return item_from_row(row) if row else None


def update_item(db: Database, item: Item, fields: ItemFields) -> Item:
    """Save the form's fields with SET/REMOVE of those attributes only.

    The write is conditional on the row still existing (an edit never recreates a deleted
    item) and on ``updatedAt`` being what the form was opened with (no silent overwrite of
    a colleague's edit).
    """
    values = {
        name: value for name, value in _field_values(fields).items() if name not in item.locked
    }
    updated = now_iso()
    new_row = {name: value for name, value in item.raw.items() if name not in values}
    new_row.update({name: value for name, value in values.items() if value is not None})
    new_row["updatedAt"] = new_row[CHANGED_AT] = s(updated)
    _check_size(new_row)

    names = {"#updatedAt": "updatedAt", "#changed": CHANGED_AT}
    attribute_values: dict[str, Any] = {":updatedAt": s(updated)}
    sets = ["#updatedAt = :updatedAt", "#changed = :updatedAt"]
    removes = []
    for name, value in values.items():
        names[f"#{name}"] = name
        if value is None:
            removes.append(f"#{name}")
        else:
            sets.append(f"#{name} = :{name}")
            attribute_values[f":{name}"] = value
    expression = "SET " + ", ".join(sets)
    if removes:
        expression += " REMOVE " + ", ".join(removes)
    if "updatedAt" in item.raw:
        condition = "attribute_exists(PK) AND #updatedAt = :seen"
        attribute_values[":seen"] = item.raw["updatedAt"]
    else:
        condition = "attribute_exists(PK) AND attribute_not_exists(#updatedAt)"
    try:
        db.client.update_item(
            TableName=db.table,
            Key=keys.item(item.workspace_id, item.item_id),
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=attribute_values,
        )
    except ClientError as exc:
        if not condition_failed(exc):
            raise
        if get_item(db, item.workspace_id, item.item_id) is None:
            raise ItemGone from exc
        raise ItemChanged from exc
    return item_from_row(new_row)


def set_status(db: Database, workspace_id: str, item_id: str, status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    try:
        db.client.update_item(
            TableName=db.table,
            Key=keys.item(workspace_id, item_id),
            UpdateExpression="SET #status = :status, #updatedAt = :now, #changed = :now",
            ConditionExpression="attribute_exists(PK)",
            ExpressionAttributeNames={
                "#status": "status",
                "#updatedAt": "updatedAt",
                "#changed": CHANGED_AT,
            },
            ExpressionAttributeValues={":status": s(status), ":now": s(now_iso())},
        )
    except ClientError as exc:
        if condition_failed(exc):
            raise ItemGone from exc
        raise


def delete_item(db: Database, workspace_id: str, item_id: str) -> bool:
    """Delete the item, leaving its tombstone; False when it was already gone."""
    key = keys.item(workspace_id, item_id)
    delete = {
        "Delete": {"TableName": db.table, "Key": key, "ConditionExpression": "attribute_exists(PK)"}
    }
    try:
        db.client.transact_write_items(TransactItems=[delete, tombstone_put(db, key, now_iso())])
    except ClientError as exc:
        gone = cancellation_reasons(exc)[:1] == ["ConditionalCheckFailed"]
        if error_code(exc) == "TransactionCanceledException" and gone:
            return False
        raise
    return True


# --- reads --------------------------------------------------------------------------------------


def _listing_query(
    db: Database, workspace_id: str, per_page: int, *, status: str | None, tag: str | None
) -> dict[str, Any]:
    """The ByCreated Query for one workspace's items, newest first, with the page's filters."""
    filters = ["begins_with(SK, :itemPrefix)"]
    names: dict[str, str] = {}
    values: dict[str, Any] = {
        ":pk": s(keys.workspace_pk(workspace_id)),
        ":itemPrefix": s(keys.ITEM_PREFIX),
    }
    if status:
        filters.append("#status = :status")
        names["#status"] = "status"
        values[":status"] = s(status)
    if tag:
        filters.append("contains(#tags, :tag)")
        names["#tags"] = "tags"
        values[":tag"] = s(tag)
    params: dict[str, Any] = {
        "TableName": db.table,
        "IndexName": keys.BY_CREATED_INDEX,
        "KeyConditionExpression": "PK = :pk",
        "FilterExpression": " AND ".join(filters),
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
        "Limit": FILTERED_QUERY_LIMIT if (status or tag) else per_page + 1 + UNFILTERED_SLACK,
    }
    if names:
        params["ExpressionAttributeNames"] = names
    return params


def list_items(
    db: Database,
    workspace_id: str,
    *,
    per_page: int,
    start_key: RawItem | None = None,
    status: str | None = None,
    tag: str | None = None,
    max_queries: int = MAX_QUERIES_PER_PAGE,
) -> ItemPage:
    """One page of items, newest first, from the ByCreated index (never a Scan).

    DynamoDB applies ``Limit`` before the filter, so a filtered page may need more than one
    Query; it keeps reading until the page is full, the index is exhausted or
    ``max_queries`` is spent. The next page starts after the last item shown.
    """
    params = _listing_query(db, workspace_id, per_page, status=status, tag=tag)
    if start_key:
        params["ExclusiveStartKey"] = start_key

    found: list[RawItem] = []
    last_key: RawItem | None = None
    for _ in range(max_queries):
        page = db.client.query(**params)
        found.extend(page.get("Items", []))
        last_key = page.get("LastEvaluatedKey")
        if len(found) > per_page or last_key is None:
            break
        params["ExclusiveStartKey"] = last_key

    shown = [item_from_row(row) for row in found[:per_page]]
    if len(found) > per_page:
        last = shown[-1]
        next_key = keys.item_start_key(workspace_id, last.item_id, last.created_at)
        return ItemPage(shown, next_key)
    if last_key is None:
        return ItemPage(shown, None)
    # The budget ran out with the page not yet full: carry on from where the reading stopped.
    return ItemPage(shown, last_key, searched_partly=True)
