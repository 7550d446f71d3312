"""How a v1 row becomes its v2 copy, whether v2 can store it, and when a copy is identical."""

from __future__ import annotations

from typing import Any

from store import keys
from store.changes import CHANGED_AT
from store.db import RawItem, n, s, text
from store.items import item_size

ORIGIN = "v1-migration"
DEFAULT_WORKSPACE_NAME = "Team workspace"

# The kinds of v1 row, and the name each one's count has in the claim and the flag.
ITEM, SETTING, MEMBER, WORKSPACE = "item", "setting", "member", "workspace"
COUNT_NAMES = {ITEM: "items", SETTING: "settings", MEMBER: "members"}

# Attributes a v2 row gains that its v1 row did not have, per kind; everything else must be
# identical. Only members gain index keys and the workspace name, so an item or setting that
# carries one of those names in v1 keeps it, and the comparison sees it.
_KEYS = frozenset({keys.PK, keys.SK})
ADDED_ATTRIBUTES = {
    ITEM: _KEYS,
    SETTING: _KEYS,
    WORKSPACE: _KEYS,
    # workspaceNameVersion: set by a rename (store/workspace_lifecycle.py) with the name.
    MEMBER: _KEYS | {keys.GSI1PK, keys.GSI1SK, "workspaceName", "workspaceNameVersion"},
}

# DynamoDB's limits (UTF-8 bytes): table keys, index keys, and one row.
MAX_PK_BYTES = 2048
MAX_SK_BYTES = 1024
MAX_ROW_BYTES = 400 * 1024
# Index key attributes, each with its role: a hash key may be 2048 bytes, a range key 1024.
INDEX_KEYS = {keys.GSI1PK: MAX_PK_BYTES, keys.GSI1SK: MAX_SK_BYTES, keys.CREATED_AT: MAX_SK_BYTES}
# Names v2 sets itself on some kinds of row: a v1 row of that kind carrying one would be
# overwritten (members), or would turn up in the ByUser index as a membership (others).
_OWN_NAMES = {
    ITEM: (keys.GSI1PK, keys.GSI1SK),
    SETTING: (keys.GSI1PK, keys.GSI1SK),
    MEMBER: (keys.GSI1PK, keys.GSI1SK, "workspaceName", "workspaceNameVersion"),
}
_TYPE_NAMES = {
    "N": "a number",
    "B": "binary",
    "BOOL": "a boolean",
    "NULL": "null",
    "M": "a map",
    "L": "a list",
    "SS": "a string set",
    "NS": "a number set",
    "BS": "a binary set",
}


def kind_of(v2_row: RawItem) -> str:
    """The kind of a v2 copy, from its sort key."""
    sk = v2_row[keys.SK]["S"]
    if sk.startswith(keys.MEMBER_PREFIX):
        return MEMBER
    if sk.startswith(keys.SETTING_PREFIX):
        return SETTING
    if sk.startswith(keys.ITEM_PREFIX):
        return ITEM
    return WORKSPACE


def storable_problem(kind: str, v1_row: RawItem, copy: RawItem) -> str | None:
    """Why DynamoDB would refuse ``copy`` (or v2 would misread it), in words for people; None
    when it can be stored as it is. Checked before writing: such a row is kept back, never
    altered to fit."""
    for name in _OWN_NAMES.get(kind, ()):
        if name in v1_row:
            return f"the v1 {kind} has a {name} attribute, which v2 uses for its own index"
    if CHANGED_AT in v1_row:  # its copy would pass for a row people changed in v2
        return f"the v1 {kind} has a {CHANGED_AT} attribute, which v2 sets on people's edits"
    if "N" in v1_row.get(keys.TTL_ATTRIBUTE, {}):
        # DynamoDB's TTL deletes any row whose expiresAt number is in the past.
        return f"it has a number in {keys.TTL_ATTRIBUTE}, by which v2's TTL would delete its copy"
    for name, limit in INDEX_KEYS.items():
        value = copy.get(name)
        if value is None:
            continue
        ((type_name, inner),) = value.items()
        if type_name != "S":
            return f"{name} is {_TYPE_NAMES.get(type_name, type_name)}; v2 needs text"
        if inner == "":
            return f"{name} is empty; v2 indexes it and needs some text"
        if len(inner.encode()) > limit:
            return f"{name} is longer than the {limit} bytes v2 can index"
    for name, limit in ((keys.PK, MAX_PK_BYTES), (keys.SK, MAX_SK_BYTES)):
        length = len(copy[name]["S"].encode())
        if length > limit:
            return f"its v2 key would be {length} bytes; DynamoDB allows {limit}"
    size = item_size(copy)
    if size > MAX_ROW_BYTES:
        return f"with its v2 keys it would be {size} bytes; DynamoDB allows {MAX_ROW_BYTES}"
    return None


def normal(value: dict[str, Any]) -> Any:
    """A comparable form of an AttributeValue: sets compare without order."""
    ((kind, inner),) = value.items()
    if kind in ("SS", "NS"):
        return kind, frozenset(inner)
    if kind == "BS":
        return kind, frozenset(bytes(x) for x in inner)
    if kind == "B":
        return kind, bytes(inner)
    if kind == "M":
        return kind, {name: normal(v) for name, v in inner.items()}
    if kind == "L":
        return kind, [normal(v) for v in inner]
    return kind, inner


def same_data(v1_row: RawItem, v2_row: RawItem | None, kind: str | None = None) -> bool:
    """Whether a v2 copy holds exactly the v1 row's attributes, apart from what v2 adds to
    that kind of row (its keys; for members also the index keys and the workspace name).
    ``kind`` defaults to what the copy's sort key says."""
    if v2_row is None:
        return False
    added = ADDED_ATTRIBUTES[kind or kind_of(v2_row)]
    mine = _data(v1_row)
    theirs = {k: v for k, v in v2_row.items() if k not in added}
    if mine.keys() != theirs.keys():
        return False
    return all(normal(mine[k]) == normal(theirs[k]) for k in mine)


def _data(row: RawItem) -> RawItem:
    return {k: v for k, v in row.items() if k not in (keys.PK, keys.SK)}


def item_copy(workspace_id: str, row: RawItem) -> RawItem:
    item_id = keys.suffix(row[keys.PK]["S"], keys.V1_ITEM_PREFIX)
    return {**_data(row), **keys.item(workspace_id, item_id)}


def setting_copy(workspace_id: str, row: RawItem) -> RawItem:
    return {**_data(row), **keys.setting(workspace_id, row[keys.SK]["S"])}


def member_copy(workspace_id: str, workspace_name: str, row: RawItem) -> RawItem:
    user_id = row[keys.SK]["S"]
    return {
        **_data(row),
        **keys.member(workspace_id, user_id),
        **keys.member_index_keys(workspace_id, user_id),
        "workspaceName": s(workspace_name),
    }


def workspace_row(
    workspace_id: str,
    members: list[RawItem],
    settings: list[RawItem],
    *,
    created_at: str,
    created_by: str,
) -> RawItem:
    """The default workspace: named after v1's ``teamName`` setting, counting v1's owners."""
    name = DEFAULT_WORKSPACE_NAME
    for row in settings:
        if row[keys.SK]["S"] == "teamName" and row.get("value", {}).get("S", "").strip():
            name = row["value"]["S"].strip()[:100]
    owners = sum(1 for row in members if text(row, "role") == "owner")
    return {
        **keys.workspace(workspace_id),
        "name": s(name),
        "createdAt": s(created_at),
        "createdBy": s(created_by),
        "origin": s(ORIGIN),
        "ownerCount": n(owners),
    }
