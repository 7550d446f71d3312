"""AWS Lambda entry point: ``lambda_app.handler`` behind API Gateway or a function URL.

apig-wsgi turns each event into a WSGI request and the app's answer back into the event's
response shape: REST APIs (payload 1.0, with multi-value headers, so every ``Set-Cookie``
survives), HTTP APIs and function URLs (payload 2.0, cookies in their own list), and binary
bodies (static files) base64-encoded. A REST API needs ``*/*`` among its binary media types
for those. On Lambda the migration copies in slices on requests only (``hosting.detect_mode``
sees ``AWS_LAMBDA_FUNCTION_NAME``): the process is frozen between invocations, so no
background thread would ever run.

The app is built on the first invocation, not at import (config.py reads the environment
then), and kept for the life of the execution environment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from apig_wsgi import make_lambda_handler

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def stage_prefix(environ: dict[str, Any]) -> str:
    """The part of the URL the API Gateway stage adds ("/prod"), which the app's routes and
    redirects must not see as part of their path but must put in front of every link."""
    context = environ.get("apig_wsgi.request_context") or {}
    path = environ.get("PATH_INFO", "")
    # REST API (1.0): ``path`` is the resource path, requestContext.path what was asked for
    # (the stage included on the execute-api domain, not on a custom domain).
    asked = context.get("path")
    if isinstance(asked, str) and asked != path and path and asked.endswith(path):
        return asked[: -len(path)]
    # HTTP API (2.0) on a named stage: rawPath starts with the stage.
    stage = context.get("stage")
    if "http" in context and stage and stage != "$default" and path.startswith(f"/{stage}/"):
        return f"/{stage}"
    return ""


def with_stage_prefix(app: WsgiApp) -> WsgiApp:
    """Move the stage from PATH_INFO to SCRIPT_NAME, as a reverse proxy's prefix would be."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        prefix = stage_prefix(environ)
        if prefix:
            environ["SCRIPT_NAME"] = prefix
            path = environ["PATH_INFO"]
            if path.startswith(prefix + "/"):
                environ["PATH_INFO"] = path[len(prefix) :]
        return app(environ, start_response)

    return wrapped


def make_handler(app: WsgiApp) -> Handler:
    """The Lambda handler for a WSGI app (tests pass theirs)."""
    return make_lambda_handler(with_stage_prefix(app), binary_support=True)


_handler: Handler | None = None
_lock = threading.Lock()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry point (``lambda_app.handler``)."""
    global _handler
    if _handler is None:
        with _lock:
            if _handler is None:
                from app import create_app

                _handler = make_handler(create_app())
    return _handler(event, context)
