"""gunicorn's settings for this app: ``gunicorn -c gunicorn.conf.py 'app:create_app()'``.

The app waits on DynamoDB far more than it computes, so each worker runs a few threads
(gthread): a page blocked on a read does not hold a whole process. Every number can be set
from the environment (README, "Serving"); the command line still overrides this file.

Timeouts are sized for the slowest thing a request legitimately does: a migration slice
(``MIGRATION_SLICE_SECONDS``, which may overrun by about one page) plus DynamoDB calls of up
to 3 attempts x (2 s connect + 5 s read) (config.py). A worker that is stopped (SIGTERM,
recycled after ``max_requests``, SIGINT/SIGQUIT, or killed for a timeout) hands the migration
claim over before it exits, so the next request resumes the copy at once instead of after a
lease (``worker_exit``, ``worker_int``, ``worker_abort`` below).
"""

from __future__ import annotations

import math
import os

# The DynamoDB calls one request may wait for in the worst case (config.py's client settings).
_DYNAMODB_WORST_CALL_SECONDS = 3 * (2 + 5)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _default_workers() -> int:
    # One process per core (at least two, so one stuck worker never takes the site down);
    # the threads below carry the concurrency.
    return max(2, os.cpu_count() or 1)


def _slice_seconds() -> float:
    raw = os.environ.get("MIGRATION_SLICE_SECONDS", "").strip()
    return float(raw) if raw else 1.0


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{_int('PORT', 8000)}"
workers = _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", _default_workers()))
threads = _int("GUNICORN_THREADS", 4)
# gthread even with one thread, so a stuck request never starves the worker's heartbeat.
worker_class = "gthread"

# A request may run one migration slice (overrunning by a page) and then a few DynamoDB calls
# at their worst; gunicorn's 30 s default could kill a worker mid-slice on a bad day.
timeout = _int(
    "GUNICORN_TIMEOUT", max(60, math.ceil(2 * _slice_seconds()) + 2 * _DYNAMODB_WORST_CALL_SECONDS)
)
# On SIGTERM: finish the requests in flight, then stop the copy at a page boundary (up to
# 3 s, runner.EXIT_JOIN_SECONDS) and hand the claim over (one conditional write).
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Behind a load balancer that keeps connections open (an ALB keeps them 60 s idle).
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then (a slow leak can't grow forever); the jitter stops every
# worker restarting on the same request. 0 turns recycling off.
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", max_requests // 10)

# Every request is logged once by the app itself (web/logging.py: method, token-free path,
# status, duration, request id), so gunicorn's access log stays off unless asked for.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
# gunicorn 27 would open ~/.gunicorn/gunicorn.ctl, one path shared by every server on the host.
control_socket_disable = True


def _json_logs() -> bool:
    from web.logging import log_format

    return log_format(os.environ) == "json"


# gunicorn's own lines (booting, worker exits, timeouts) in the same JSON as the app's.
if _json_logs():
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "web.logging.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
            # A logging config turns gunicorn's access log on; it stays quiet unless asked for.
            "gunicorn.access": {
                "level": "INFO" if accesslog else "WARNING",
                "handlers": ["stderr"],
                "propagate": False,
            },
        },
    }


def _hand_over_migration(worker: object, why: str) -> None:
    """Stop this worker's migration copy at its next page and hand the claim over."""
    from blueprints.migration import runner

    runner.stop_all_runs(f"gunicorn worker {getattr(worker, 'pid', '?')} {why}")


def worker_exit(server: object, worker: object) -> None:
    # Called in the worker process after it leaves its loop: SIGTERM, max_requests, a crash.
    _hand_over_migration(worker, "exiting")


def worker_int(worker: object) -> None:
    # SIGINT or SIGQUIT: a quick shutdown, still worth a hand-over.
    _hand_over_migration(worker, "interrupted")


def worker_abort(worker: object) -> None:
    # SIGABRT after a timeout: the copy may be stuck, so the hand-over may come from outside
    # the run (its late writes are then refused by the takeover's fences).
    _hand_over_migration(worker, "timed out")
