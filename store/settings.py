"""A workspace's settings: ``SET#<name>`` rows holding ``value`` and ``updatedAt``.

Five settings are known and typed; any other row (a v1 setting this version does not know)
is kept as it is and shown read-only. Saving touches only the settings that changed, with
SET of ``value``/``updatedAt`` so any other attribute of a setting row survives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import keys
from .changes import CHANGED_AT, tombstone_put
from .db import Database, RawItem, now_iso, query_prefix, s


@dataclass(frozen=True)
class Known:
    name: str
    label: str
    kind: str  # DynamoDB type of ``value``: S, N or BOOL
    default: Any
    hint: str = ""


KNOWN: dict[str, Known] = {
    spec.name: spec
    for spec in (
        Known("teamName", "Team name", "S", "", "Shown to everyone in the workspace."),
        Known("timezone", "Time zone", "S", "UTC", "An IANA time zone, e.g. Europe/Berlin."),
        Known("defaultStatus", "Status of new items", "S", "open"),
        Known("itemsPerPage", "Items per page", "N", 25, "From 5 to 100."),
        Known("notifyOnAssign", "Notify people when an item is assigned to them", "BOOL", False),
    )
}
PAGE_SIZE_RANGE = (5, 100)


@dataclass(frozen=True)
class Settings:
    """Typed values of the known settings (defaults where unset), and everything else raw."""

    values: dict[str, Any]
    # Known settings stored with a type the form cannot edit: shown read-only, never written.
    locked: dict[str, RawItem]
    # Settings this version does not know, name -> the whole row.
    unknown: dict[str, RawItem]
    present: frozenset[str]


def typed(spec: Known, value: Mapping[str, Any] | None) -> Any:
    """The Python value of a known setting's ``value``, or None when its type is foreign."""
    if value is None or spec.kind not in value:
        return None
    if spec.kind == "N":
        try:
            return int(value["N"])
        except ValueError:
            return None
    return value[spec.kind]


def raw_value(spec: Known, value: Any) -> dict[str, Any]:
    if spec.kind == "N":
        return {"N": str(int(value))}
    if spec.kind == "BOOL":
        return {"BOOL": bool(value)}
    return s(str(value))


def from_rows(rows: Mapping[str, RawItem | None]) -> Settings:
    """Settings from their rows, by setting name (absent rows may be None)."""
    values = {name: spec.default for name, spec in KNOWN.items()}
    locked: dict[str, RawItem] = {}
    unknown: dict[str, RawItem] = {}
    present = set()
    for name, row in rows.items():
        if row is None:
            continue
        present.add(name)
        spec = KNOWN.get(name)
        if spec is None:
            unknown[name] = row
            continue
        value = typed(spec, row.get("value"))
        if value is None:
            locked[name] = row
        else:
            values[name] = value
    return Settings(values, locked, unknown, frozenset(present))


def read_settings(db: Database, workspace_id: str) -> Settings:
    rows = query_prefix(db, keys.workspace_pk(workspace_id), keys.SETTING_PREFIX)
    return from_rows({keys.suffix(row[keys.SK]["S"], keys.SETTING_PREFIX): row for row in rows})


def setting_keys(workspace_id: str, names: list[str]) -> list[keys.Key]:
    return [keys.setting(workspace_id, name) for name in names]


def save_settings(db: Database, workspace_id: str, changes: Mapping[str, Any]) -> None:
    """Write the changed known settings in one transaction; None removes a setting."""
    now = now_iso()
    actions: list[dict[str, Any]] = []
    for name, value in changes.items():
        spec = KNOWN[name]
        key = keys.setting(workspace_id, name)
        if value is None:
            actions.append({"Delete": {"TableName": db.table, "Key": key}})
            actions.append(tombstone_put(db, key, now))
            continue
        actions.append(
            {
                "Update": {
                    "TableName": db.table,
                    "Key": key,
                    "UpdateExpression": "SET #value = :value, #updatedAt = :now, #changed = :now",
                    "ExpressionAttributeNames": {
                        "#value": "value",
                        "#updatedAt": "updatedAt",
                        "#changed": CHANGED_AT,
                    },
                    "ExpressionAttributeValues": {":value": raw_value(spec, value), ":now": s(now)},
                }
            }
        )
    if actions:
        db.client.transact_write_items(TransactItems=actions)


def page_size(settings: Settings) -> int:
    low, high = PAGE_SIZE_RANGE
    return max(low, min(high, int(settings.values["itemsPerPage"])))
