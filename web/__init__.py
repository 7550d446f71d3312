"""The request pipeline every blueprint relies on: sessions, cross-site checks and headers,
template globals and filters, error pages, token-free logs."""

from __future__ import annotations

from flask import Flask

from web import errors, logging, outbox, security, sessions, templating


def init_app(app: Flask) -> None:
    """Wire the pipeline; the order is the order the hooks run in.

    The cross-site check runs before the session loader, so a forged POST is refused before
    any cookie is read; ``set_headers`` is registered first and so runs last (Flask runs
    ``after_request`` hooks in reverse), seeing the cookies a refresh just set. Log
    redaction goes in first of all, before anything (an error page) can log a path.
    """
    logging.init_app(app)
    security.init_app(app)
    sessions.init_app(app)
    templating.init_app(app)
    errors.init_app(app)
    outbox.init_app(app)
