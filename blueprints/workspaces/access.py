"""Who may see a workspace page: resolved once per request, from the table, never from the
token's claims.

``@workspace_view(min_role=...)`` asks ``store.pages.load_page`` for the session's revocation
row, the workspace, the person's membership and whatever else the page names, in ONE strongly
consistent BatchGetItem. Unknown workspace or no membership: 404, whatever the page. A role
below the page's minimum: 403. A member removed or demoted a moment ago is therefore refused
on their very next request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import wraps
from typing import Any

from flask import abort, current_app, render_template

from store import workspaces as store_workspaces
from store.accounts import Account
from store.db import get_db
from store.pages import WorkspacePage, load_page
from store.sessions import SessionRef
from web import sessions
from web.errors import render_error
from web.state import request_state

from . import background

# Ids are uuid4 hex for everything v2 makes, but v1 item ids are kept as they were, so only
# what can never be a stored id (control characters, absurd lengths) is refused up front,
# as a 404 without a DynamoDB call.
_ID = re.compile(r"^[^\x00-\x1f\x7f/]{1,256}$")

# In ``extras``, the id of a row that belongs to the signed-in person, not to the URL.
SIGNED_IN_USER = ""


def valid_id(value: str) -> bool:
    return bool(_ID.match(value))


def workspace_view(
    min_role: str = "member",
    *,
    settings: tuple[str, ...] = (),
    extras: Mapping[str, str] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Resolve ``ws_id`` and the signed-in person's membership, then check the role.

    ``settings`` names the settings the page shows; ``extras`` names other rows the page
    needs, each with the URL argument that holds its id (``{"item": "item_id"}``, or
    ``SIGNED_IN_USER``). The view reads them all from ``page()``.
    """
    needed = store_workspaces.rank(min_role)
    if not needed:
        raise ValueError(f"unknown role {min_role!r}")
    wanted = dict(extras or {})

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapped(ws_id: str, **kwargs: Any) -> Any:
            user = sessions.peek_user()
            if user is None:
                return sessions.redirect_to_login()
            if not valid_id(ws_id) or not all(
                valid_id(v) for k, v in kwargs.items() if k.endswith("_id")
            ):
                abort(404)
            ids = {kind: kwargs[arg] if arg else user.user_id for kind, arg in wanted.items()}

            def read(ref: SessionRef) -> tuple[Account, WorkspacePage]:
                loaded = load_page(
                    get_db(),
                    ref.session_id,
                    ws_id,
                    user.user_id,
                    settings=settings,
                    extras=ids,
                    name=user.name,
                    generation=ref.generation,
                )
                assert loaded.account is not None  # noqa: S101 - read with the generation
                return loaded.account, loaded

            try:
                loaded = sessions.confirmed_read(read)
            except sessions.SignedOut:
                return sessions.redirect_to_login()
            if loaded.workspace is not None and loaded.workspace.lifecycle:
                _gone(ws_id)
            if loaded.workspace is None or loaded.member is None:
                abort(404)
            if loaded.workspace.names_behind:
                background.continue_names(ws_id)
            request_state().page = loaded
            if loaded.member.rank < needed:
                abort(403, description=_refusal(min_role))
            return view(ws_id=ws_id, **kwargs)

        return sessions.mark_signed_in_page(wrapped)

    return decorate


def _gone(ws_id: str) -> None:
    """410 for a workspace being deleted or deleted; a visit also moves a stalled deletion
    on (request mode, or a process that crashed mid-way)."""
    background.continue_deletion(ws_id)
    abort(current_app.make_response((render_template("workspaces/gone.html"), 410)))


def _refusal(min_role: str) -> str:
    if min_role == "owner":
        return "Only the workspace's owners can do that."
    if min_role == "admin":
        return "Only the workspace's owners and admins can do that."
    return "Only members of this workspace can do that."


def page() -> WorkspacePage:
    """The page ``workspace_view`` read for this request; its workspace and member are set."""
    loaded = request_state().page
    if loaded is None or loaded.workspace is None or loaded.member is None:
        raise RuntimeError("page() outside a workspace_view")
    return loaded


def extra_or_404(kind: str, message: str) -> Any:
    """An extra row the page asked for, typed; a 404 saying ``message`` when it is absent."""
    found = page().extras[kind]
    if found is None:
        not_found(message)
    return found


def not_found(message: str) -> None:
    """A 404 that says what is missing (the generic 404 page shows no message)."""
    abort(current_app.make_response(render_error(404, message)))
