"""Logs never carry an invite token: the loggers that print request paths (access logs,
error handlers) get a filter that replaces the token in ``/invite/<token>``."""

from __future__ import annotations

import logging
import re

from flask import Flask

# /invite/<token> (also URL-encoded, as in ?next=%2Finvite%2F<token>).
_TOKEN_IN_PATH = re.compile(r"((?:/|%2F)invite(?:/|%2F))[A-Za-z0-9_\-]{8,}", re.IGNORECASE)
# Loggers that write request paths: the dev server, gunicorn, our error handler, Flask's.
_PATH_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "web.errors", "flask.app")


def redact(message: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1[redacted]", message)


class RedactInviteTokens(logging.Filter):
    """Replace invite tokens in a record's message (access logs print the request path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(app_logger_name: str | None = None) -> None:
    names = [*_PATH_LOGGERS, *([app_logger_name] if app_logger_name else [])]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactInviteTokens) for f in logger.filters):
            logger.addFilter(RedactInviteTokens())


def init_app(app: Flask) -> None:
    install_log_redaction(app.logger.name)
