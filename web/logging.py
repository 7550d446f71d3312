"""Logs: one line per request, JSON in production and readable text in development, and never
an invite token.

``LOG_FORMAT`` (``json`` or ``text``) overrides the choice made from ``APP_ENV``. Each request
gets an id (the caller's ``X-Request-Id``, else the trace id a load balancer or API Gateway
sent, else a new one), logged with the request and sent back in ``X-Request-Id``. Paths are
logged without their query string and with invite tokens replaced (``redact``); the loggers
that print paths themselves (access logs, error handlers) get the same filter.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, has_request_context, request
from werkzeug.datastructures import Headers

from web.state import request_state

# /invite/<token> (also URL-encoded, as in ?next=%2Finvite%2F<token>).
_TOKEN_IN_PATH = re.compile(r"((?:/|%2F)invite(?:/|%2F))[A-Za-z0-9_\-]{8,}", re.IGNORECASE)
# Loggers that write request paths: the dev server, gunicorn, our error handler, Flask's.
_PATH_LOGGERS = ("werkzeug", "gunicorn.access", "gunicorn.error", "web.errors", "flask.app")

LOG_FORMATS = ("json", "text")
REQUEST_ID_HEADER = "X-Request-Id"
# A caller's request id is echoed into logs and a header: only a short, plain token is.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:=;/+-]{1,128}")
# The fields a log call may add with ``extra=`` that JSON lines carry as their own keys.
FIELDS = (
    "event",
    "method",
    "path",
    "status",
    "duration_ms",
    "cpu_ms",
    "dynamodb_calls",
    "request_id",
    "outcome",
    "items",
    "settings",
    "members",
    "kept_back",
    "mode",
)

requests_log = logging.getLogger("web.requests")


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


# --- formats ---------------------------------------------------------------------------------


def log_format(env: Mapping[str, str]) -> str:
    """``LOG_FORMAT`` if set, else ``text`` in development and ``json`` everywhere else
    (gunicorn.conf.py asks too, before any app exists)."""
    chosen = env.get("LOG_FORMAT", "").strip().lower()
    if chosen:
        return chosen
    return "text" if env.get("APP_ENV", "production").strip() == "development" else "json"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the known ``extra`` fields,
    and the traceback of an exception as one string (a log shipper reads one line)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter_for(chosen: str) -> logging.Formatter:
    return JsonFormatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT)


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler this module installs (recognised, so a second app does not add another)."""


def install_handler(chosen: str, stream: Any = None) -> logging.Handler | None:
    """Log INFO and up to stderr in the chosen format, unless the root logger already has a
    handler (gunicorn.conf.py's JSON config, pytest's capture, an operator's own setup; on
    Lambda the runtime's handler is given our JSON format instead)."""
    root = logging.getLogger()
    if any(not isinstance(h, _OurHandler) for h in root.handlers):
        if chosen == "json" and os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            # Lambda's runtime has its own handler on the root logger (it adds the
            # invocation's request id); our lines go through it, in our JSON.
            for handler in root.handlers:
                handler.setFormatter(JsonFormatter())
            if root.level == logging.NOTSET or root.level > logging.INFO:
                root.setLevel(logging.INFO)
        return None
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = _OurHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(chosen))
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler


# --- one line per request ----------------------------------------------------------------------


def request_id_from(headers: Mapping[str, str] | Headers, environ: Mapping[str, Any]) -> str:
    """The caller's ``X-Request-Id``, else the load balancer's or API Gateway's trace id
    (``X-Amzn-Trace-Id``'s Root), else API Gateway's request id, else a new one."""
    given = headers.get(REQUEST_ID_HEADER, "").strip()
    if _SAFE_REQUEST_ID.fullmatch(given):
        return given
    trace = headers.get("X-Amzn-Trace-Id", "")
    for part in trace.split(";"):
        name, _, value = part.strip().partition("=")
        if name == "Root" and _SAFE_REQUEST_ID.fullmatch(value):
            return value
    context = environ.get("apig_wsgi.request_context") or {}
    if isinstance(context, Mapping):
        gateway_id = str(context.get("requestId", ""))
        if _SAFE_REQUEST_ID.fullmatch(gateway_id):
            return gateway_id
    return uuid.uuid4().hex


def _start_request() -> None:
    state = request_state()
    state.started = time.perf_counter()
    state.cpu_started = time.thread_time()
    state.request_id = request_id_from(request.headers, request.environ)


def _log_request(response: Response) -> Response:
    state = request_state()
    if not state.request_id:  # a response made before the first hook ran
        _start_request()
    response.headers[REQUEST_ID_HEADER] = state.request_id
    duration_ms = round((time.perf_counter() - state.started) * 1000, 1)
    # CPU this request's thread used: far below the duration means waiting (DynamoDB, or
    # other threads holding the GIL), close to it means computing (password hashing).
    cpu_ms = round((time.thread_time() - state.cpu_started) * 1000, 1)
    # The path only: a query string may carry anything, and invite tokens are replaced.
    path = redact(request.path)
    requests_log.info(
        "%s %s %s %.1f ms",
        request.method,
        path,
        response.status_code,
        duration_ms,
        extra={
            "event": "request",
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "cpu_ms": cpu_ms,
            "dynamodb_calls": state.dynamodb_calls,
            "request_id": state.request_id,
        },
    )
    from web import metrics

    metrics.record_request(response.status_code, duration_ms)
    return response


def _count_dynamodb_call(**_: Any) -> None:
    """Count the calls a request makes (a background copy, outside requests, is not)."""
    if has_request_context():
        request_state().dynamodb_calls += 1


def init_app(app: Flask) -> None:
    install_log_redaction(app.logger.name)
    database = app.extensions.get("db")
    if database is not None:
        database.client.meta.events.register("before-call.dynamodb", _count_dynamodb_call)
    if not app.testing:
        install_handler(app.config.get("LOG_FORMAT") or log_format({}))
    app.before_request(_start_request)
    app.after_request(_log_request)
