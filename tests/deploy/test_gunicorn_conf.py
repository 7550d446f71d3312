"""gunicorn.conf.py: its numbers come from the environment, and a worker it stops hands the
migration claim over through its worker_exit hook (a real gunicorn, DynamoDB Local)."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devtools.live_server import LiveServer
from store.migration.claim import STATE_RUNNING, STATE_WAITING
from tests.support import visitor as browsing
from tests.support.faults import COPIES, FaultProxy
from tests.support.helpers import seed_v1, wait_for
from tests.support.multiprocess import server_env, wait_for_claim

CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
SETTINGS = (
    "GUNICORN_",
    "WEB_CONCURRENCY",
    "PORT",
    "MIGRATION_SLICE_SECONDS",
    "LOG_FORMAT",
    "APP_ENV",
)


def _load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    import os

    for name in list(os.environ):
        if name.startswith(SETTINGS):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {"__file__": str(CONFIG)}
    exec(compile(CONFIG.read_text(), str(CONFIG), "exec"), namespace)  # noqa: S102 - our file
    return namespace


@pytest.mark.backend_independent
def test_defaults_fit_an_io_bound_app_and_outlast_a_slice(monkeypatch: pytest.MonkeyPatch):
    config = _load(monkeypatch)

    assert config["worker_class"] == "gthread" and config["threads"] == 4
    assert config["workers"] >= 2
    assert config["timeout"] >= 2 * 1 + 2 * 21, "a slice and two worst-case DynamoDB calls"
    assert config["graceful_timeout"] > 3, "longer than the copy's stop (EXIT_JOIN_SECONDS)"
    assert config["max_requests"] == 1000 and 0 < config["max_requests_jitter"] < 1000
    assert config["accesslog"] is None, "the app logs each request itself"
    for hook in ("worker_exit", "worker_int", "worker_abort"):
        assert callable(config[hook])
    assert config["logconfig_dict"]["formatters"]["json"]["()"] == "web.logging.JsonFormatter"


@pytest.mark.backend_independent
def test_every_number_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    config = _load(
        monkeypatch,
        GUNICORN_WORKERS="3",
        GUNICORN_THREADS="8",
        GUNICORN_TIMEOUT="90",
        GUNICORN_GRACEFUL_TIMEOUT="40",
        GUNICORN_MAX_REQUESTS="0",
        GUNICORN_BIND="127.0.0.1:9000",
        APP_ENV="development",
    )

    assert (config["workers"], config["threads"], config["timeout"]) == (3, 8, 90)
    assert (config["graceful_timeout"], config["max_requests"]) == (40, 0)
    assert config["bind"] == "127.0.0.1:9000"
    assert "logconfig_dict" not in config, "development logs stay gunicorn's plain text"


@pytest.mark.backend_independent
def test_web_concurrency_and_a_long_slice_are_honoured(monkeypatch: pytest.MonkeyPatch):
    config = _load(monkeypatch, WEB_CONCURRENCY="5", MIGRATION_SLICE_SECONDS="30")
    assert config["workers"] == 5
    assert config["timeout"] >= 2 * 30 + 2 * 21


@pytest.mark.local_only("runs gunicorn against DynamoDB Local")
@pytest.mark.slow
def test_a_stopped_worker_hands_the_claim_over_from_worker_exit(
    live_server_factory: Callable[..., LiveServer], fault_proxy: FaultProxy
) -> None:
    """Thread mode, a slow copy, a lease of 10 minutes: SIGTERM of the worker holding the
    claim leaves it waiting with its progress (not running until the lease lapses), and the
    worker's log says gunicorn.conf.py's worker_exit did it. With LOG_FORMAT=json, the app's
    lines and gunicorn's own are JSON objects."""
    # A long budget: on a busy machine a slow write is retried rather than failing the run.
    env = server_env(
        fault_proxy,
        lease=600,
        MIGRATION_SLICE_SECONDS="0.5",
        MIGRATION_BUDGET_SECONDS="120",
        LOG_FORMAT="json",
    )
    server = live_server_factory(workers=1, threads=4, extra_env=env, project_config=True)
    db = server.database
    accounts = seed_v1(db, items=1200, settings=2, members=2)
    fault_proxy.delay(COPIES, 0.3)
    visitor = browsing.Visitor(server.url)
    visitor.login(accounts[0].email)
    visitor.get("/workspaces")
    copying = wait_for_claim(db, lambda c: c.state == STATE_RUNNING)
    assert copying.items_copied < 1200, "the copy finished before it could be interrupted"
    [worker] = server.worker_pids()

    server.kill_worker(worker, signal.SIGTERM, timeout=60)

    released = wait_for_claim(db, lambda c: c.state != STATE_RUNNING)
    assert released.state == STATE_WAITING and released.owner == copying.owner
    assert released.items_copied >= copying.items_copied and not released.last_error
    said = f"migration: gunicorn worker {worker} exiting, handing the copy over"
    assert wait_for(lambda: said in _messages(server), timeout=30)
    fault_proxy.delay(COPIES, 0)
    requests = [line for line in _json_lines(server) if line.get("event") == "request"]
    assert {"/login", "/workspaces"} <= {line["path"] for line in requests}
    assert all(line["request_id"] and line["status"] for line in requests)
    assert any(line["logger"] == "gunicorn.error" for line in _json_lines(server))


def _json_lines(server: LiveServer) -> list[dict[str, Any]]:
    """The server's log lines that are JSON objects (the app's and gunicorn's own)."""
    lines = []
    for line in server.log_tail(2_000_000).splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
    return lines


def _messages(server: LiveServer) -> set[str]:
    return {line["message"] for line in _json_lines(server)}
