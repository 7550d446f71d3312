"""A transaction is all or nothing, on both backends: what the suite's checks rest on.

On moto the rollback is the suite's own (tests/support/moto_transactions.py copies the rows a
transaction names instead of whole tables); these tests hold it to DynamoDB's behaviour.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from store.db import Database
from tests.support.helpers import scan_all


def _row(pk: str, sk: str, **more: Any) -> dict[str, Any]:
    return {"PK": {"S": pk}, "SK": {"S": sk}, **more}


@pytest.fixture
def rows(database: Database) -> list[dict[str, Any]]:
    for row in (
        _row("P#1", "A", n={"N": "1"}, tags={"SS": ["x", "y"]}),
        _row("P#1", "B", n={"N": "2"}),
        _row("P#2", "A", n={"N": "3"}, nested={"M": {"l": {"L": [{"S": "deep"}]}}}),
        _row("FENCE", "F", owner={"S": "run-a"}),
    ):
        database.client.put_item(TableName=database.table, Item=row)
    return scan_all(database)


def _every_kind_of_write(table: str, fence_holds: bool) -> list[dict[str, Any]]:
    return [
        {"Put": {"TableName": table, "Item": _row("P#3", "A", n={"N": "9"})}},
        {"Put": {"TableName": table, "Item": _row("P#1", "A", n={"N": "100"})}},
        {
            "Update": {
                "TableName": table,
                "Key": {"PK": {"S": "P#2"}, "SK": {"S": "A"}},
                "UpdateExpression": "SET n = n + :one, nested.l[0] = :changed",
                "ExpressionAttributeValues": {":one": {"N": "1"}, ":changed": {"S": "no"}},
            }
        },
        {"Delete": {"TableName": table, "Key": {"PK": {"S": "P#1"}, "SK": {"S": "B"}}}},
        {
            "ConditionCheck": {
                "TableName": table,
                "Key": {"PK": {"S": "FENCE"}, "SK": {"S": "F"}},
                "ConditionExpression": "#owner = :me",
                "ExpressionAttributeNames": {"#owner": "owner"},
                "ExpressionAttributeValues": {":me": {"S": "run-a" if fence_holds else "run-b"}},
            }
        },
    ]


def test_a_cancelled_transaction_leaves_every_row_as_it_was(
    database: Database, rows: list[dict[str, Any]]
) -> None:
    with pytest.raises(ClientError) as raised:
        database.client.transact_write_items(
            TransactItems=_every_kind_of_write(database.table, fence_holds=False)
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert scan_all(database) == rows


def test_a_refused_transaction_naming_a_row_twice_leaves_every_row_as_it_was(
    database: Database, rows: list[dict[str, Any]]
) -> None:
    twice = _every_kind_of_write(database.table, fence_holds=True)[:3] + [
        {"Delete": {"TableName": database.table, "Key": {"PK": {"S": "P#3"}, "SK": {"S": "A"}}}}
    ]
    with pytest.raises(ClientError) as raised:
        database.client.transact_write_items(TransactItems=twice)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert scan_all(database) == rows


def test_a_transaction_that_holds_applies_every_write(
    database: Database, rows: list[dict[str, Any]]
) -> None:
    database.client.transact_write_items(
        TransactItems=_every_kind_of_write(database.table, fence_holds=True)
    )
    after = {(r["PK"]["S"], r["SK"]["S"]): r for r in scan_all(database)}
    assert set(after) == {("P#1", "A"), ("P#2", "A"), ("P#3", "A"), ("FENCE", "F")}
    assert after[("P#1", "A")]["n"] == {"N": "100"} and "tags" not in after[("P#1", "A")]
    assert after[("P#2", "A")]["n"] == {"N": "4"}
    assert after[("P#2", "A")]["nested"] == {"M": {"l": {"L": [{"S": "no"}]}}}
