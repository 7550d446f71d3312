"""Which migration mode a host needs: ``request`` where the app gets no time outside
requests (serverless, recycled workers without threads), ``thread`` elsewhere."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

MODE_THREAD = "thread"
MODE_REQUEST = "request"


def detect_mode(
    environ: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """``request`` where the host gives the app no time outside requests, else ``thread``;
    with the reason, for the log. Judged from the request's WSGI environ and the process:

    * AWS Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set): the process is frozen between calls.
    * uWSGI without threads (``enable-threads`` off and no ``threads``): no thread but the
      request's ever runs Python.
    * gunicorn without worker threads (``wsgi.multithread`` false: sync, gevent, eventlet)
      whose worker is recycled (``max_requests`` > 0, read from the worker object itself, so
      the command line, ``GUNICORN_CMD_ARGS`` and config files all count).
    """
    env = os.environ if env is None else env
    if env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return MODE_REQUEST, "AWS Lambda"
    uwsgi = _uwsgi()
    if uwsgi is not None:
        options = getattr(uwsgi, "opt", {}) or {}
        if _enabled(options.get("enable-threads")) or _count(options.get("threads")) > 0:
            return MODE_THREAD, "uWSGI with threads"
        return MODE_REQUEST, "uWSGI without threads"
    if str(environ.get("SERVER_SOFTWARE", "")).startswith("gunicorn"):
        if environ.get("wsgi.multithread"):
            return MODE_THREAD, "gunicorn with worker threads"
        worker = _gunicorn_worker()
        max_requests = int(getattr(getattr(worker, "cfg", None), "max_requests", 0) or 0)
        if max_requests > 0:
            return MODE_REQUEST, f"gunicorn worker without threads, max_requests={max_requests}"
        return MODE_THREAD, "gunicorn worker that is not recycled"
    return MODE_THREAD, "a long-lived server process"


def _uwsgi() -> Any | None:
    try:
        import uwsgi  # type: ignore[import-not-found]  # only exists inside uWSGI
    except ImportError:
        return None
    return uwsgi


def _values(raw: Any) -> list[Any]:
    return list(raw) if isinstance(raw, list | tuple) else [raw]


def _enabled(raw: Any) -> bool:
    """A uWSGI flag option: True, or bytes/str such as b"true", b"1"; repeated: a list."""
    for value in _values(raw):
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        if value is True or str(value).strip().lower() in ("true", "1", "yes", "on"):
            return True
    return False


def _count(raw: Any) -> int:
    best = 0
    for value in _values(raw):
        if isinstance(value, bytes):
            value = value.decode(errors="replace")
        try:
            best = max(best, int(str(value).strip()))
        except ValueError:
            continue
    return best


def _gunicorn_worker() -> Any | None:
    """The gunicorn worker serving this request: the ``self`` of a frame up the stack."""
    base = sys.modules.get("gunicorn.workers.base")
    if base is None:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, base.Worker):
            return candidate
        frame = frame.f_back
    return None
