"""Who may see a workspace page: resolved once per request, from the table, never from the
token's claims.

``@workspace_view(min_role=...)`` reads the session's revocation row, the workspace row, the
person's member row and any rows the page asks for in ONE strongly consistent BatchGetItem
(``sessions.confirm_session``). Unknown workspace or no membership: 404, whatever the page.
A role below the page's minimum: 403. A member removed or demoted a moment ago is therefore
refused on their very next request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, current_app, g, redirect, request

from store import keys
from store import settings as store_settings
from store import workspaces as store_workspaces
from store.db import RawItem
from web import sessions
from web.errors import render_error

# Ids are uuid4 hex for everything v2 makes, but v1 item ids are kept as they were, so only
# what can never be a stored id (control characters, absurd lengths) is refused up front,
# as a 404 without a DynamoDB call.
_ID = re.compile(r"^[^\x00-\x1f\x7f/]{1,256}$")

ExtraKeys = Callable[[str, dict[str, Any]], list[keys.Key]]


def valid_id(value: str) -> bool:
    return bool(_ID.match(value))


def _redirect_to_login() -> Any:
    return redirect(sessions.login_url(), 303 if request.method != "GET" else 302)


def workspace_view(
    min_role: str = "member",
    *,
    settings: tuple[str, ...] = (),
    rows: ExtraKeys | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Resolve ``ws_id`` and the signed-in person's membership, then check the role.

    Puts on ``g``: ``workspace``, ``member`` (with ``name`` from the session), ``settings``
    (the named settings, typed, defaults where unset) and ``rows`` (what ``rows`` asked for).
    """
    needed = store_workspaces.rank(min_role)
    if not needed:
        raise ValueError(f"unknown role {min_role!r}")

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(ws_id: str, **kwargs: Any) -> Any:
            claims = g.get("claims")
            if claims is None:
                return _redirect_to_login()
            if not valid_id(ws_id) or not all(
                valid_id(v) for k, v in kwargs.items() if k.endswith("_id")
            ):
                abort(404)
            user_id = claims["sub"]
            extra = rows(ws_id, kwargs) if rows else []
            wanted = [
                keys.workspace(ws_id),
                keys.member(ws_id, user_id),
                *store_settings.setting_keys(ws_id, list(settings)),
                *extra,
            ]
            try:
                found = sessions.confirm_session(wanted)
            except sessions.SignedOut:
                return _redirect_to_login()
            workspace_row, member_row = found[0], found[1]
            if workspace_row is None or member_row is None:
                abort(404)
            user = sessions.current_user()
            g.workspace = store_workspaces.workspace_from_row(workspace_row)
            g.member = store_workspaces.member_from_row(member_row, user.name if user else "")
            setting_rows = found[2 : 2 + len(settings)]
            g.settings = store_settings.from_rows(dict(zip(settings, setting_rows, strict=True)))
            g.rows = found[2 + len(settings) :]
            if g.member.rank < needed:
                abort(403, description=_refusal(min_role))
            return view(ws_id=ws_id, **kwargs)

        # The sign-in marker other hooks (the migration gate) rely on.
        wrapped.login_required = True  # type: ignore[attr-defined]
        wrapped.min_role = min_role  # type: ignore[attr-defined]
        return wrapped

    return decorate


def _refusal(min_role: str) -> str:
    if min_role == "owner":
        return "Only the workspace's owners can do that."
    if min_role == "admin":
        return "Only the workspace's owners and admins can do that."
    return "Only members of this workspace can do that."


def extra_row(position: int = 0) -> RawItem | None:
    """One of the rows a view asked for with ``rows=``."""
    return g.rows[position]


def not_found(message: str) -> None:
    """A 404 that says what is missing (the generic 404 page shows no message)."""
    abort(current_app.make_response(render_error(404, message)))
