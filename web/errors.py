"""Error pages that say what happened and leak nothing."""

from __future__ import annotations

import logging
from typing import cast

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_jwt_extended import unset_jwt_cookies
from flask_jwt_extended.exceptions import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError
from werkzeug.wrappers import Response

from web import sessions
from web.security import same_origin_request
from web.state import request_state

log = logging.getLogger(__name__)

TITLES = {
    400: "That request did not look right",
    403: "You can't do that here",
    404: "Page not found",
    405: "That action is not allowed here",
    413: "That was too large",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "Please try again in a moment",
}


def render_error(code: int, message: str | None = None, **context: object) -> tuple[str, int]:
    title = TITLES.get(code, "Something went wrong")
    return render_template(
        "errors/error.html", code=code, title=title, message=message, **context
    ), code


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    if exc.code is None or exc.code < 400:
        return exc
    # Our own abort(code, description=...) texts are written for people; werkzeug's stock
    # descriptions for other codes are not shown.
    own_text = exc.description != type(exc).description
    message = exc.description if own_text or exc.code in (400, 403, 429, 503) else None
    if exc.code == 413:
        message = "The form was larger than this site accepts. Shorten the text and try again."
    body, code = render_error(exc.code, message)
    # Werkzeug's own response keeps the exception's headers (Allow, Retry-After, ...).
    response = cast(Response, exc.get_response())
    response.set_data(body)
    response.mimetype = "text/html"
    response.status_code = code
    return response


def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
    """A form whose CSRF token is missing or stale: offer to send it again, keeping input.

    Only for a request the browser says came from our own page (a person's form from an
    older session, a second tab, a refresh mid-edit). Re-rendering the fields of any other
    token-less POST with a fresh token would turn a forgery into a one-click one, so
    anything that cannot show it is same-origin gets a plain 403 that repeats nothing.
    """
    claims = sessions.decode_cookie_session()
    if claims is None:
        response = sessions.redirect_to_login()
        unset_jwt_cookies(response)
        return response
    request_state().claims = claims
    if not same_origin_request():
        return render_error(
            403,
            "This form could not be checked, so nothing was saved. Reload the page and try again.",
        )
    kept = [(name, value) for name, value in request.form.items(multi=True) if name != "csrf_token"]
    return render_error(
        400,
        "This form had expired, so nothing was saved. Check it and send it again.",
        resubmit_action=request.path,
        resubmit_fields=kept,
    )


def _server_error(exc: Exception) -> tuple[str, int]:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(500, "It has been logged. Please try again in a little while.")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(InternalServerError, _server_error)
    app.register_error_handler(Exception, _server_error)
