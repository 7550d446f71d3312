"""What every template can use: the signed-in person, the workspace page being shown, and
CSRF values for forms."""

from __future__ import annotations

from typing import Any

from flask import Flask

from web import security, sessions
from web.state import request_state


def _template_context() -> dict[str, Any]:
    state = request_state()
    page = state.page
    return {
        "signed_in_user": sessions.peek_user() if state.claims else None,
        # The workspace page's workspace and the signed-in person's membership in it (the
        # layout's nav reads them); None outside a workspace page.
        "current_workspace": page.workspace if page else None,
        "current_member": page.member if page else None,
    }


def init_app(app: Flask) -> None:
    app.context_processor(_template_context)
    # Globals, not context: imported macros (the form macro) see globals only.
    app.jinja_env.globals.update(
        session_csrf_token=sessions.csrf_value,
        preauth_csrf_token=security.preauth_csrf_token,
    )
