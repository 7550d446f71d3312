"""Fixtures: one suite, two DynamoDB backends.

``--backend=moto`` runs in-process and fast; ``--backend=local`` runs the same tests against
Amazon's DynamoDB Local over HTTP, where limits are validated and concurrency is real.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from store import schema
from store.db import Database, build_client
from tests.support.app import TEST_SECRET, make_app
from tests.support.auth import Person, register
from tests.support.helpers import WebClient
from tests.support.late_writes import one_writer_on_moto
from tests.support.local_dynamodb import ReplaceableDynamoDBLocal

pytest_plugins = [
    "tests.support.iam_recorder",
    "tests.support.live_fixtures",
    "tests.support.migration",
    "tests.support.workspaces",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("moto", "local"),
        default=os.environ.get("TEST_BACKEND", "moto"),
        help="DynamoDB backend: moto in-process, or DynamoDB Local over HTTP",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "local_only(reason): needs a real DynamoDB server")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line(
        "markers",
        "stream_table: the test's table has its stream on, as db init makes it (test tables "
        "have none), and on moto the late-write sync writes one key at a time",
    )
    config.addinivalue_line(
        "markers", "backend_independent: tests no DynamoDB backend; run once, with --backend=moto"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--backend") == "local":
        for item in items:
            if item.get_closest_marker("backend_independent"):
                item.add_marker(pytest.mark.skip(reason="backend-independent: runs with moto"))
        return
    for item in items:
        marker = item.get_closest_marker("local_only")
        if marker:
            reason = marker.args[0] if marker.args else "needs DynamoDB Local"
            item.add_marker(pytest.mark.skip(reason=f"moto: {reason}"))


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--backend")


_LOCAL = pytest.StashKey[ReplaceableDynamoDBLocal]()


@pytest.fixture(scope="session")
def _dynamodb_local(
    backend: str, pytestconfig: pytest.Config
) -> Iterator[ReplaceableDynamoDBLocal | None]:
    if backend != "local":
        yield None
        return
    server = pytestconfig.stash[_LOCAL] = ReplaceableDynamoDBLocal()
    try:
        yield server
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _LOCAL in config.stash:
        restarts = config.stash[_LOCAL].restarts
        terminalreporter.write_line(
            f"DynamoDB Local: replaced {restarts} times for its stream records "
            "(tests/support/local_dynamodb.py)"
        )


@pytest.fixture
def local_endpoint(_dynamodb_local: ReplaceableDynamoDBLocal | None) -> str | None:
    """The session's DynamoDB Local, replaced first if its stream records would slow this
    test's writes (tests/support/local_dynamodb.py); None with moto."""
    return None if _dynamodb_local is None else _dynamodb_local.endpoint()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials so nothing can ever reach a real AWS account (moto's advice)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "DYNAMODB_ENDPOINT", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("APP_ENV", "development")
    monkeypatch.setenv("SECRET_KEY", TEST_SECRET)


@pytest.fixture
def ddb_client(backend: str, local_endpoint: str | None, aws_env: None) -> Iterator[Any]:
    if backend == "moto":
        from moto import mock_aws

        from tests.support import moto_transactions

        moto_transactions.install()
        with mock_aws():
            yield build_client(endpoint=None, region="us-east-1", local_credentials=True)
    else:
        yield build_client(endpoint=local_endpoint, region="us-east-1", local_credentials=True)


@pytest.fixture
def table_name(request: pytest.FixtureRequest, ddb_client: Any) -> Iterator[str]:
    stream = request.node.get_closest_marker("stream_table") is not None
    name = f"test-{uuid.uuid4().hex[:12]}"
    schema.ensure_table(ddb_client, name, poll=0.05, stream=stream)
    yield name
    ddb_client.delete_table(TableName=name)


@pytest.fixture(autouse=True)
def _one_writer_on_moto_for_stream_tables(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.get_closest_marker("stream_table") is not None:
        one_writer_on_moto(request.getfixturevalue("ddb_client"), monkeypatch)


@pytest.fixture
def database(ddb_client: Any, table_name: str) -> Database:
    return Database(client=ddb_client, table=table_name)


@pytest.fixture
def app(ddb_client: Any, table_name: str) -> Any:
    return make_app(ddb_client, table_name)


@pytest.fixture
def web(app: Any) -> WebClient:
    return WebClient(app.test_client())


@pytest.fixture
def other_web(app: Any) -> WebClient:
    """A second browser, for a second person."""
    return WebClient(app.test_client())


@pytest.fixture
def runner(app: Any) -> Any:
    return app.test_cli_runner()


# The two people most tests need, each registered in a browser of their own.
@pytest.fixture
def alice(app: Any) -> Person:
    return register(app, "alice@x.com", "Alice Archer")


@pytest.fixture
def bob(app: Any) -> Person:
    return register(app, "bob@x.com", "Bob Baker")
