"""What every template can use: the signed-in person, and CSRF values for forms."""

from __future__ import annotations

from typing import Any

from flask import Flask, g

from web import security, sessions


def _template_context() -> dict[str, Any]:
    return {"signed_in_user": sessions.peek_user() if g.get("claims") else None}


def init_app(app: Flask) -> None:
    app.context_processor(_template_context)
    # Globals, not context: imported macros (the form macro) see globals only.
    app.jinja_env.globals.update(
        session_csrf_token=sessions.csrf_value,
        preauth_csrf_token=security.preauth_csrf_token,
    )
