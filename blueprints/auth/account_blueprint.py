"""The blueprint of a person's own account: confirming the address (confirm.py), resetting a
forgotten password (reset.py), and the account page (account.py)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template

from web.security import preauth_csrf_valid
from web.state import request_state

bp = Blueprint("account", __name__)


def check_preauth_csrf() -> None:
    if not preauth_csrf_valid():
        abort(403, description="This form had expired. Go back, reload the page and try again.")


def private(response: Any) -> Any:
    """A page whose URL carries a live token: never cached, never sent on as a Referer."""
    request_state().no_store = True
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def private_page(template: str, status: int = 200, **context: Any) -> Any:
    return private(current_app.make_response((render_template(template, **context), status)))


def unusable_link() -> Any:
    """One answer for every bad link: unknown, used, expired (OWASP: no oracle)."""
    return private_page("auth/link_unusable.html", 404)
