"""store.capabilities and ``db init``: a server that lacks what v2 needs is refused by name,
before anyone signs in; a server that lacks only optional parts is used, saying so."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse

from store import capabilities, keys
from store.db import Database
from tests.support.app import make_app
from tests.support.auth import dynamodb_failure
from tests.support.helpers import hooked, scan_all

TRANSACTIONS = "transactions with condition checks (TransactWriteItems)"


def probe_rows(database: Database) -> list[dict[str, Any]]:
    return [
        row
        for row in scan_all(database)
        if row["PK"]["S"] == keys.MIGRATION_PK
        and row["SK"]["S"].startswith(capabilities.PROBE_PREFIX)
    ]


@contextlib.contextmanager
def conditions_ignored(client: Any) -> Iterator[None]:
    """A server that answers every transaction with success, conditions or not."""

    def answer(model: Any, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if model.name != "TransactWriteItems":
            return None
        return AWSResponse("http://stand-in", 200, {}, None), {}

    with hooked(client, "before-call.dynamodb", answer):
        yield


@contextlib.contextmanager
def fresh_app(ddb_client: Any) -> Iterator[Any]:
    name = f"caps-{uuid.uuid4().hex[:10]}"
    app = make_app(ddb_client, name)
    try:
        yield app
    finally:
        ddb_client.delete_table(TableName=name)


def test_a_real_server_is_ready_and_the_probe_leaves_no_row(database: Database):
    report = capabilities.check(database.client, database.table)

    assert report.ready and report.missing == []
    assert probe_rows(database) == []


def test_a_server_without_transactions_is_named_as_lacking_them(database: Database):
    with dynamodb_failure(
        database.client, code="UnknownOperationException", operations=["TransactWriteItems"]
    ):
        report = capabilities.check(database.client, database.table)

    assert not report.ready
    assert len(report.missing) == 1
    assert report.missing[0].startswith(TRANSACTIONS)
    assert "UnknownOperationException" in report.missing[0]
    assert probe_rows(database) == []


def test_a_server_that_commits_a_failed_condition_is_not_ready(database: Database):
    with conditions_ignored(database.client):
        report = capabilities.check(database.client, database.table)

    assert report.missing == [
        f"{TRANSACTIONS}: a failed condition check did not cancel the transaction"
    ]


def test_batch_reads_and_parallel_scans_are_asked_for_too(database: Database):
    with dynamodb_failure(
        database.client, code="UnknownOperationException", operations=["BatchGetItem", "Scan"]
    ):
        report = capabilities.check(database.client, database.table)

    assert [line.split(" (")[0] for line in report.missing] == [
        "batch reads",
        "parallel, strongly consistent scans",
    ]


def test_db_init_refuses_a_server_without_transactions_naming_it(ddb_client: Any):
    with fresh_app(ddb_client) as app:
        client = app.extensions["db"].client
        with dynamodb_failure(
            client, code="UnknownOperationException", operations=["TransactWriteItems"]
        ):
            result = app.test_cli_runner().invoke(args=["db", "init"])

        assert result.exit_code == 2, result.output
        assert "refusing: this server cannot run v2" in result.output
        assert TRANSACTIONS in result.output
        assert "is ready" not in result.output


def test_db_init_goes_on_without_ttl_saying_so(ddb_client: Any):
    with fresh_app(ddb_client) as app:
        client = app.extensions["db"].client
        with dynamodb_failure(
            client,
            code="UnknownOperationException",
            operations=["DescribeTimeToLive", "UpdateTimeToLive"],
        ):
            result = app.test_cli_runner().invoke(args=["db", "init"])

        assert result.exit_code == 0, result.output
        assert "TTL not supported by this server (skipped" in result.output
        assert "is ready" in result.output


def test_db_init_still_fails_loudly_on_an_unexpected_ttl_error(ddb_client: Any):
    with fresh_app(ddb_client) as app:
        client = app.extensions["db"].client
        with dynamodb_failure(
            client, code="AccessDeniedException", operations=["UpdateTimeToLive"]
        ):
            result = app.test_cli_runner().invoke(args=["db", "init"])

        assert result.exit_code != 0
        assert "is ready" not in result.output
