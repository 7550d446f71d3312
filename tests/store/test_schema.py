"""store.schema: creating the table, and bringing a v1 table up to v2 without touching a row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from store import keys, schema
from store.db import Database
from store.migration import legacy
from tests.support.helpers import create_v1_table, scan_all

V2_INDEXES = {keys.BY_USER_INDEX, keys.BY_CREATED_INDEX}


def _indexes(client: Any, table: str) -> dict[str, dict[str, Any]]:
    description = client.describe_table(TableName=table)["Table"]
    return {index["IndexName"]: index for index in description.get("GlobalSecondaryIndexes", [])}


def _ttl(client: Any, table: str) -> dict[str, Any]:
    return client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]


def test_a_new_table_has_the_v2_keys_indexes_and_ttl(database: Database):
    client, table = database.client, database.table
    description = client.describe_table(TableName=table)["Table"]

    assert description["TableStatus"] == "ACTIVE"
    assert {(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]} == {
        ("PK", "HASH"),
        ("SK", "RANGE"),
    }
    indexes = _indexes(client, table)
    assert set(indexes) == V2_INDEXES
    assert [k["AttributeName"] for k in indexes[keys.BY_USER_INDEX]["KeySchema"]] == [
        keys.GSI1PK,
        keys.GSI1SK,
    ]
    assert [k["AttributeName"] for k in indexes[keys.BY_CREATED_INDEX]["KeySchema"]] == [
        keys.PK,
        keys.CREATED_AT,
    ]
    assert _ttl(client, table)["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    assert _ttl(client, table)["AttributeName"] == keys.TTL_ATTRIBUTE


def test_running_it_again_changes_nothing(database: Database):
    database.client.put_item(
        TableName=database.table, Item={**keys.key("A", "B"), "x": {"S": "kept"}}
    )
    before = scan_all(database)

    done = schema.ensure_table(database.client, database.table, poll=0.01)

    assert [line for line in done if "skipped" not in line] == []
    assert scan_all(database) == before
    assert set(_indexes(database.client, database.table)) == V2_INDEXES


@pytest.fixture(params=["on-demand", "provisioned"])
def v1_table(request: pytest.FixtureRequest, ddb_client: Any) -> Iterator[Database]:
    """A table as v1 made it: PK/SK only, no index, no TTL, holding v1 rows."""
    name = f"v1-{uuid.uuid4().hex[:12]}"
    billing: dict[str, Any] = (
        {"BillingMode": "PAY_PER_REQUEST"}
        if request.param == "on-demand"
        else {"ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}}
    )
    create_v1_table(ddb_client, name, **billing)
    ddb_client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    database = Database(client=ddb_client, table=name)
    rows, _ = legacy.build_dataset(30, 5, 4, "pbkdf2:sha256:260000$salt$hash", seed=3)
    legacy.write_rows(database, rows)
    yield database
    ddb_client.delete_table(TableName=name)


def test_a_v1_table_gets_the_indexes_and_ttl_without_a_row_touched(v1_table: Database):
    before = scan_all(v1_table)
    assert len(before) == 30 + 5 + 4 + 2 * 5

    done = schema.ensure_table(v1_table.client, v1_table.table, poll=0.05)

    assert f"added index {keys.BY_USER_INDEX}" in done
    assert f"added index {keys.BY_CREATED_INDEX}" in done
    assert f"enabled TTL on {keys.TTL_ATTRIBUTE}" in done
    assert set(_indexes(v1_table.client, v1_table.table)) == V2_INDEXES
    assert all(
        i["IndexStatus"] == "ACTIVE" for i in _indexes(v1_table.client, v1_table.table).values()
    )
    assert _ttl(v1_table.client, v1_table.table)["AttributeName"] == keys.TTL_ATTRIBUTE
    assert scan_all(v1_table) == before
    assert [
        line
        for line in schema.ensure_table(v1_table.client, v1_table.table, poll=0.05)
        if "skipped" not in line
    ] == []


# --- waiting and races, with a stubbed client (no server: app logic only) ----------------------


def _table(status: str, index_status: str = "ACTIVE") -> dict[str, Any]:
    return {
        "Table": {
            "TableName": "tbl",
            "TableStatus": status,
            "GlobalSecondaryIndexes": [
                {"IndexName": name, "IndexStatus": index_status} for name in sorted(V2_INDEXES)
            ],
        }
    }


TTL_ON = {"TimeToLiveDescription": {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiresAt"}}
PITR_ON = {
    "ContinuousBackupsDescription": {
        "ContinuousBackupsStatus": "ENABLED",
        "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED"},
    }
}


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="stub",
        aws_secret_access_key="stub",  # noqa: S106 - not a secret
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_ttl_is_not_switched_on_over_v1_rows_it_would_delete(v1_table: Database):
    """A v1 item with a number in expiresAt (an attribute v1 servers were free to use) would
    be deleted by TTL once switched on: db init leaves TTL off and says why."""
    past = {"N": "1000000000"}  # 2001: TTL would delete it within hours
    doomed = {**keys.v1_item("doomed"), "title": {"S": "keep me"}, keys.TTL_ATTRIBUTE: past}
    v1_table.client.put_item(TableName=v1_table.table, Item=doomed)
    before = scan_all(v1_table)

    done = schema.ensure_table(v1_table.client, v1_table.table, poll=0.05)

    assert any(line.startswith("TTL not enabled: 1 v1 or account rows") for line in done), done
    assert f"enabled TTL on {keys.TTL_ATTRIBUTE}" not in done
    assert _ttl(v1_table.client, v1_table.table).get("TimeToLiveStatus") in (None, "DISABLED")
    assert scan_all(v1_table) == before


def test_it_waits_while_the_table_is_being_created(stubbed: tuple[Any, Stubber]):
    client, stubber = stubbed
    stubber.add_response("describe_table", _table("CREATING"), {"TableName": "tbl"})
    stubber.add_response("describe_table", _table("CREATING"), {"TableName": "tbl"})
    stubber.add_response("describe_table", _table("CREATING", "CREATING"), {"TableName": "tbl"})
    stubber.add_response("describe_table", _table("ACTIVE"), {"TableName": "tbl"})
    stubber.add_response("describe_time_to_live", TTL_ON, {"TableName": "tbl"})
    stubber.add_response("describe_continuous_backups", PITR_ON, {"TableName": "tbl"})
    waiting: list[str] = []

    done = schema.ensure_table(client, "tbl", poll=0, report=waiting.append)

    assert done == []
    assert len(waiting) == 2 and "CREATING" in waiting[0]


def test_a_table_created_meanwhile_by_someone_else_counts_as_existing(
    stubbed: tuple[Any, Stubber],
):
    client, stubber = stubbed
    stubber.add_client_error("describe_table", "ResourceNotFoundException")
    stubber.add_client_error("create_table", "ResourceInUseException")
    stubber.add_response("describe_table", _table("CREATING"), {"TableName": "tbl"})
    stubber.add_response("describe_table", _table("ACTIVE"), {"TableName": "tbl"})
    stubber.add_response("describe_time_to_live", TTL_ON, {"TableName": "tbl"})
    stubber.add_response("describe_continuous_backups", PITR_ON, {"TableName": "tbl"})

    assert schema.ensure_table(client, "tbl", poll=0) == []


def test_other_create_errors_are_not_hidden(stubbed: tuple[Any, Stubber]):
    from botocore.exceptions import ClientError

    client, stubber = stubbed
    stubber.add_client_error("describe_table", "ResourceNotFoundException")
    stubber.add_client_error("create_table", "LimitExceededException")

    with pytest.raises(ClientError, match="LimitExceeded"):
        schema.ensure_table(client, "tbl", poll=0)


def test_a_table_that_never_becomes_active_times_out(stubbed: tuple[Any, Stubber]):
    client, stubber = stubbed
    stubber.add_response("describe_table", _table("UPDATING"), {"TableName": "tbl"})
    stubber.add_response("describe_table", _table("UPDATING"), {"TableName": "tbl"})

    with pytest.raises(TimeoutError, match="not active"):
        schema.ensure_table(client, "tbl", poll=0, timeout=-1)


def test_point_in_time_recovery_is_switched_on_where_supported(stubbed: tuple[Any, Stubber]):
    client, stubber = stubbed
    stubber.add_response("describe_table", _table("ACTIVE"), {"TableName": "tbl"})
    stubber.add_response("describe_table", _table("ACTIVE"), {"TableName": "tbl"})
    stubber.add_response("describe_time_to_live", TTL_ON, {"TableName": "tbl"})
    stubber.add_response(
        "describe_continuous_backups",
        {"ContinuousBackupsDescription": {"ContinuousBackupsStatus": "DISABLED"}},
        {"TableName": "tbl"},
    )
    stubber.add_response(
        "update_continuous_backups",
        PITR_ON,
        {
            "TableName": "tbl",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )

    assert schema.ensure_table(client, "tbl", poll=0) == ["enabled point-in-time recovery"]
