"""Pages for a developer's laptop only: the mail the app would have sent (``/dev/mail``).

Outside ``APP_ENV=development`` every page here is a 404, as if it did not exist.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, current_app, render_template
from markupsafe import Markup, escape

from web import outbox
from web.state import request_state

bp = Blueprint("dev", __name__, url_prefix="/dev")

# Only web links become clickable; anything else in a body stays text.
_LINK = re.compile(r"https?://[^\s<>\"']+")


@bp.before_request
def development_only() -> None:
    if current_app.config.get("APP_ENV") != "development":
        abort(404)
    # Mail holds live tokens: never cached, never sent on as a Referer.
    request_state().no_store = True


@bp.after_request
def no_referrer(response: Any) -> Any:
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def linkify(body: str) -> Markup:
    """The body as escaped text with its http(s) links made clickable."""
    parts: list[str] = []
    position = 0
    for match in _LINK.finditer(body):
        parts.append(str(escape(body[position : match.start()])))
        url = escape(match.group(0))
        parts.append(f'<a href="{url}">{url}</a>')
        position = match.end()
    parts.append(str(escape(body[position:])))
    return Markup("".join(parts))  # noqa: S704 - every piece was escaped above


@bp.get("/mail")
def mail_list() -> Any:
    return render_template("dev/mail_list.html", messages=outbox.list_mail(current_app.config))


@bp.get("/mail/<message_id>")
def mail_show(message_id: str) -> Any:
    message = outbox.read_mail(current_app.config, message_id)
    if message is None:
        abort(404)
    return render_template("dev/mail_show.html", message=message, body=linkify(message.body))
