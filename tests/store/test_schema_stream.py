"""db init turns the table's stream on (late v1 writes are read from it), and a server without
streams is still used, saying so."""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError

from store import capabilities, schema
from store.db import Database


def stream_of(client: Any, table: str) -> dict[str, Any]:
    spec: dict[str, Any] = client.describe_table(TableName=table)["Table"].get(
        "StreamSpecification", {}
    )
    return spec


def test_db_init_turns_the_stream_on_once(runner: Any, database: Database):
    first = runner.invoke(args=["db", "init"])
    assert first.exit_code == 0, first.output
    assert "enabled the table's stream (NEW_AND_OLD_IMAGES)" in first.output
    assert stream_of(database.client, database.table) == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    again = runner.invoke(args=["db", "init"])
    assert again.exit_code == 0 and "stream" not in again.output, again.output
    assert capabilities.check(database.client, database.table).optional == []


def test_a_table_without_a_stream_gets_one_and_the_check_reports_it_optional(ddb_client: Any):
    name = f"test-s-{uuid.uuid4().hex[:8]}"
    schema.ensure_table(ddb_client, name, poll=0.05, stream=False)
    try:
        report = capabilities.check(ddb_client, name)
        assert report.ready and "no stream on the table" in report.optional[0]

        done = schema.ensure_table(ddb_client, name, poll=0.05, stream=True)

        assert "enabled the table's stream (NEW_AND_OLD_IMAGES)" in done
        assert stream_of(ddb_client, name)["StreamEnabled"] is True
    finally:
        ddb_client.delete_table(TableName=name)


def test_a_server_without_streams_is_used_and_says_so(ddb_client: Any, monkeypatch: Any):
    name = f"test-s-{uuid.uuid4().hex[:8]}"
    schema.ensure_table(ddb_client, name, poll=0.05, stream=False)

    def refuse(**params: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ValidationException", "Message": "streams unsupported"}},
            "UpdateTable",
        )

    monkeypatch.setattr(ddb_client, "update_table", refuse)
    try:
        done = schema.ensure_table(ddb_client, name, poll=0.05, stream=True)
        assert any(line.startswith("streams not supported by this server") for line in done)
    finally:
        monkeypatch.undo()
        ddb_client.delete_table(TableName=name)
