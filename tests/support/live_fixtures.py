"""Fixtures for tests that run the real app under gunicorn (loaded by tests/conftest.py).

Every fixture here needs DynamoDB Local, so with ``--backend=moto`` they skip the test.

- ``live_server``: a fresh table and a 2-worker gunicorn (``tests.live_server.LiveServer``).
  Configure it with ``@pytest.mark.live_server(workers=3, extra_env={...})`` (any keyword of
  ``LiveServer``), or start more with ``live_server_factory(**kwargs)``; ``table=`` puts a
  second server on the first one's table.
- ``fault_proxy``: a ``tests.support.faults.FaultProxy`` in front of DynamoDB Local. Send a server
  through it with ``extra_env={"DYNAMODB_ENDPOINT": fault_proxy.url}``: the server's
  ``database`` (for seeding and checking) still talks to DynamoDB Local directly.

On a failure the tail of each server's log is added to the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.live_server import LiveServer
from tests.support.faults import FaultProxy

SERVERS = pytest.StashKey[list[LiveServer]]()
PROXIES = pytest.StashKey[list[FaultProxy]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live_server(**kwargs): keyword arguments for the live_server fixture"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and report.when in ("setup", "call"):
        for server in item.stash.get(SERVERS, []):
            where = server.url if server.port else "not started"
            report.sections.append((f"live server log {where}", server.log_tail()))
        for proxy in item.stash.get(PROXIES, []):
            if proxy.errors:
                report.sections.append(("fault proxy errors", "\n".join(proxy.errors)))
    return report


@pytest.fixture
def live_server_factory(
    request: pytest.FixtureRequest, local_endpoint: str | None
) -> Iterator[Callable[..., LiveServer]]:
    """``live_server_factory(**kwargs) -> LiveServer``, started; all stopped at teardown."""
    if local_endpoint is None:
        pytest.skip("needs --backend=local")
    servers: list[LiveServer] = []
    request.node.stash[SERVERS] = servers

    def start(**kwargs: Any) -> LiveServer:
        server = LiveServer(local_endpoint, **kwargs)
        servers.append(server)
        return server.start()

    yield start
    # Servers on a borrowed table go first; the one that made the table drops it last.
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def live_server(
    request: pytest.FixtureRequest, live_server_factory: Callable[..., LiveServer]
) -> LiveServer:
    """A fresh table and gunicorn (2 workers); ``@pytest.mark.live_server(...)`` configures."""
    marker = request.node.get_closest_marker("live_server")
    options = dict(marker.kwargs) if marker else {}
    options.setdefault("workers", 2)
    return live_server_factory(**options)


@pytest.fixture
def fault_proxy(request: pytest.FixtureRequest, local_endpoint: str | None) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of DynamoDB Local, with no faults set yet."""
    if local_endpoint is None:
        pytest.skip("needs --backend=local")
    proxy = FaultProxy(local_endpoint, seed=20260101)
    request.node.stash[PROXIES] = [proxy]
    with proxy:
        yield proxy
