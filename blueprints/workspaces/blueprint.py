"""The one blueprint every workspace page and invite link belongs to, and what its templates
share: local times, read-only views of raw DynamoDB values, and token-free logs."""

from __future__ import annotations

import base64
import logging
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint
from flask.blueprints import BlueprintSetupState

from store.db import plain

bp = Blueprint("workspaces", __name__)

# --- logs never carry an invite token ------------------------------------------------------------

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


@bp.record_once
def _on_register(state: BlueprintSetupState) -> None:
    install_log_redaction(state.app.logger.name)


# --- template helpers -------------------------------------------------------------------------


@bp.app_template_filter("localtime")
def localtime(value: str, zone: str = "UTC") -> str:
    """An ISO-8601 UTC timestamp in the workspace's time zone, or the text as stored."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(ZoneInfo(zone or "UTC"))
    except (ValueError, KeyError, OSError):
        return value
    return local.strftime("%-d %b %Y, %H:%M")


_TYPE_NAMES = {
    "S": "text",
    "N": "number",
    "B": "binary",
    "BOOL": "yes/no",
    "NULL": "empty",
    "SS": "set of text",
    "NS": "set of numbers",
    "BS": "set of binary",
    "L": "list",
    "M": "map",
}
_INLINE_BINARY = 48


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        if len(value) <= _INLINE_BINARY:
            return "base64:" + base64.b64encode(value).decode()
        return f"<{len(value)} bytes>"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "null"
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(_show(v) for v in value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in sorted(value.items())) + "}"
    return str(value)


@bp.app_template_filter("attribute_type")
def attribute_type(raw: dict[str, Any]) -> str:
    return _TYPE_NAMES.get(next(iter(raw)), next(iter(raw)))


@bp.app_template_filter("attribute_value")
def attribute_value(raw: dict[str, Any]) -> str:
    """A stored value as text, exactly (38-digit numbers included); the template escapes it."""
    return _show(plain(raw))
