"""Everything the request pipeline learns about one request, in one object on ``g``.

The session loader, the views, the after-request hooks and the templates all read and write
this one ``RequestState``, so what a request knows is listed in one place rather than spread
over loose ``g`` attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import g

from store.accounts import Account
from store.pages import WorkspacePage


@dataclass
class RequestState:
    # The verified token's claims; None when signed out (or when the session was revoked).
    claims: dict[str, Any] | None = None
    # The cookie was bad, expired or revoked: expire it on the way out.
    clear_auth: bool = False
    # The revocation row was read this request (the session is live, not just signed).
    session_confirmed: bool = False
    # The signed-in account's profile, read with the revocation row (once confirmed).
    account: Account | None = None
    # This response starts or ends a session (no refresh; never cached).
    signed_in: bool = False
    signed_out: bool = False
    # Never cache this response, though nobody is signed in (an invite link).
    no_store: bool = False
    # A pre-sign-in CSRF nonce chosen this request, to be set as a cookie.
    new_preauth_nonce: str | None = None
    # The workspace page being shown, once ``workspace_view`` has read it.
    page: WorkspacePage | None = None
    # For the request's log line (web/logging.py): its id and when it started (perf_counter).
    request_id: str = ""
    started: float = 0.0
    # This request thread's CPU clock at the start, and the DynamoDB calls it has made.
    cpu_started: float = 0.0
    dynamodb_calls: int = 0


def request_state() -> RequestState:
    """This request's state, made on first use."""
    state: RequestState | None = g.get("request_state")
    if state is None:
        state = g.request_state = RequestState()
    return state
