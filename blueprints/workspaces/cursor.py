"""Opaque, tamper-proof page cursors for the items list.

A cursor is the ExclusiveStartKey of the next page, bound to the workspace and the filters
it was made for, signed with the app's secret (itsdangerous). A cursor that was changed,
made for another workspace or for other filters is refused (400), so a person can neither
forge a start key nor carry one from one list to another.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

from store.db import RawItem

SALT = "items-cursor-v1"


class BadCursor(Exception):
    """The cursor was not made by this app for this list."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def _scope(workspace_id: str, status: str | None, tag: str | None) -> list[str]:
    return [workspace_id, status or "", tag or ""]


def encode(key: RawItem, workspace_id: str, status: str | None, tag: str | None) -> str:
    # Every key attribute of the table and the ByCreated index is a string.
    plain = {name: value["S"] for name, value in key.items()}
    return _serializer().dumps({"k": plain, "s": _scope(workspace_id, status, tag)})


def decode(token: str, workspace_id: str, status: str | None, tag: str | None) -> RawItem:
    try:
        data: Any = _serializer().loads(token)
    except BadData as exc:
        raise BadCursor from exc
    if not isinstance(data, dict) or data.get("s") != _scope(workspace_id, status, tag):
        raise BadCursor
    key = data.get("k")
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
        raise BadCursor
    return {name: {"S": value} for name, value in key.items()}
