"""How a v1 row becomes its v2 copy, and when a copy counts as identical to its v1 row."""

from __future__ import annotations

from typing import Any

from store import keys
from store.db import RawItem, n, s, text

ORIGIN = "v1-migration"
DEFAULT_WORKSPACE_NAME = "Team workspace"
# Attributes a v2 row gains that its v1 row did not have; everything else must be identical.
ADDED_ATTRIBUTES = frozenset({keys.PK, keys.SK, keys.GSI1PK, keys.GSI1SK, "workspaceName"})


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


def same_data(v1_row: RawItem, v2_row: RawItem | None) -> bool:
    """Whether a v2 copy holds exactly the v1 row's attributes (keys and index keys aside)."""
    if v2_row is None:
        return False
    mine = _data(v1_row)
    theirs = {k: v for k, v in v2_row.items() if k not in ADDED_ATTRIBUTES}
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
