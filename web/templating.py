"""What every template can use: the signed-in person, the workspace page being shown, CSRF
values for forms, local times, and read-only views of raw DynamoDB values."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask

from store.db import plain
from web import security, sessions
from web.state import request_state


def _template_context() -> dict[str, Any]:
    state = request_state()
    page = state.page
    return {
        "signed_in_user": sessions.peek_user() if state.claims else None,
        # Set once the session was checked against the profile: the banner asking an
        # unconfirmed person to confirm their address.
        "unconfirmed_account": (
            state.account if state.account is not None and not state.account.confirmed else None
        ),
        # The workspace page's workspace and the signed-in person's membership in it (the
        # layout's nav reads them); None outside a workspace page.
        "current_workspace": page.workspace if page else None,
        "current_member": page.member if page else None,
    }


def localtime(value: str, zone: str = "UTC") -> str:
    """An ISO-8601 UTC timestamp in the workspace's time zone, or the text as stored."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(ZoneInfo(zone or "UTC"))
    except (ValueError, KeyError, OSError):
        return value
    return local.strftime("%-d %b %Y, %H:%M")


_TYPE_NAMES = {
    "S": "text",
    "N": "number",
    "B": "binary",
    "BOOL": "yes/no",
    "NULL": "empty",
    "SS": "set of text",
    "NS": "set of numbers",
    "BS": "set of binary",
    "L": "list",
    "M": "map",
}
_INLINE_BINARY = 48


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        if len(value) <= _INLINE_BINARY:
            return "base64:" + base64.b64encode(value).decode()
        return f"<{len(value)} bytes>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "null"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(_show(v) for v in value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


def attribute_type(raw: dict[str, Any]) -> str:
    return _TYPE_NAMES.get(next(iter(raw)), next(iter(raw)))


def attribute_value(raw: dict[str, Any]) -> str:
    """A stored value as text, exactly (38-digit numbers included); the template escapes it."""
    return _show(plain(raw))


def init_app(app: Flask) -> None:
    app.context_processor(_template_context)
    app.add_template_filter(localtime, "localtime")
    app.add_template_filter(attribute_type, "attribute_type")
    app.add_template_filter(attribute_value, "attribute_value")
    # Globals, not context: imported macros (the form macro) see globals only.
    app.jinja_env.globals.update(
        session_csrf_token=sessions.csrf_value,
        preauth_csrf_token=security.preauth_csrf_token,
    )
