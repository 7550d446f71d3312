"""Creating the table, and bringing a v1 table up to what v2 needs, without touching a row."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import keys
from .db import Database, error_code

Report = Callable[[str], None]

_ATTRIBUTES = {
    keys.PK: "S",
    keys.SK: "S",
    keys.GSI1PK: "S",
    keys.GSI1SK: "S",
    keys.CREATED_AT: "S",
}

_INDEXES: dict[str, list[tuple[str, str]]] = {
    keys.BY_USER_INDEX: [(keys.GSI1PK, "HASH"), (keys.GSI1SK, "RANGE")],
    keys.BY_CREATED_INDEX: [(keys.PK, "HASH"), (keys.CREATED_AT, "RANGE")],
}


def _index_definition(name: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [{"AttributeName": a, "KeyType": t} for a, t in _INDEXES[name]],
        "Projection": {"ProjectionType": "ALL"},
    }


def _attribute_definitions(names: set[str]) -> list[dict[str, str]]:
    return [{"AttributeName": a, "AttributeType": _ATTRIBUTES[a]} for a in sorted(names)]


def _provisioned_capacity(description: dict[str, Any]) -> dict[str, int] | None:
    """The table's capacity if it is provisioned (a v1 table may be): a new index on such a
    table needs capacity of its own, and on an on-demand table must not name any."""
    if description.get("BillingModeSummary", {}).get("BillingMode") == "PAY_PER_REQUEST":
        return None
    throughput = description.get("ProvisionedThroughput", {})
    read, write = throughput.get("ReadCapacityUnits", 0), throughput.get("WriteCapacityUnits", 0)
    if not read or not write:
        return None
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def _describe(client: Any, table: str) -> dict[str, Any] | None:
    try:
        description: dict[str, Any] = client.describe_table(TableName=table)["Table"]
        return description
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def table_status(db: Database) -> str | None:
    """The table's status in lower case ("active", "updating"...), or None when the table
    is missing or DynamoDB cannot be reached: what a health check reports."""
    try:
        return str(db.client.describe_table(TableName=db.table)["Table"]["TableStatus"]).lower()
    except (ClientError, BotoCoreError):
        return None


def _wait_until_active(
    client: Any, table: str, *, poll: float, timeout: float, report: Report
) -> dict[str, Any]:
    """Wait for the table and every index to be ACTIVE; a real CreateTable takes a while."""
    deadline = time.monotonic() + timeout
    while True:
        description = _describe(client, table)
        pending = []
        if description is None or description["TableStatus"] != "ACTIVE":
            pending.append(f"table {description and description['TableStatus']}")
        for index in (description or {}).get("GlobalSecondaryIndexes", []):
            if index.get("IndexStatus", "ACTIVE") != "ACTIVE":
                pending.append(f"index {index['IndexName']} {index['IndexStatus']}")
        if not pending and description is not None:
            return description
        if time.monotonic() > deadline:
            raise TimeoutError(f"{table} is not active after {timeout:.0f} s: {', '.join(pending)}")
        report("waiting: " + ", ".join(pending))
        time.sleep(poll)


def ensure_table(
    client: Any,
    table: str,
    *,
    poll: float = 2.0,
    timeout: float = 900.0,
    report: Report = lambda _line: None,
    stream: bool = False,
) -> list[str]:
    """Create the table or add what v2 needs to a v1 table; return what was done.
    ``stream``: turn on the table's stream, where late v1 writes are read from (``db init``
    does; tables made for tests and benchmarks need not pay for one)."""
    done: list[str] = []
    description = _describe(client, table)
    if description is None:
        try:
            client.create_table(
                TableName=table,
                AttributeDefinitions=_attribute_definitions(set(_ATTRIBUTES)),
                KeySchema=[
                    {"AttributeName": keys.PK, "KeyType": "HASH"},
                    {"AttributeName": keys.SK, "KeyType": "RANGE"},
                ],
                GlobalSecondaryIndexes=[_index_definition(name) for name in _INDEXES],
                BillingMode="PAY_PER_REQUEST",
            )
            done.append(f"created table {table}")
        except ClientError as exc:
            # Another process (a second worker, an operator) created it first.
            if error_code(exc) != "ResourceInUseException":
                raise
    description = _wait_until_active(client, table, poll=poll, timeout=timeout, report=report)

    existing = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
    capacity = _provisioned_capacity(description)
    for name in _INDEXES:
        if name in existing:
            continue
        # DynamoDB creates one index per UpdateTable call, so add them one at a time.
        needed = {attribute for attribute, _ in _INDEXES[name]}
        index = _index_definition(name)
        if capacity:
            index["ProvisionedThroughput"] = capacity
        client.update_table(
            TableName=table,
            AttributeDefinitions=_attribute_definitions(needed),
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        done.append(f"added index {name}")
        _wait_until_active(client, table, poll=poll, timeout=timeout, report=report)

    if stream:
        done.extend(_ensure_stream(client, table, description, poll, timeout, report))
    done.extend(_ensure_ttl(client, table))
    done.extend(_ensure_point_in_time_recovery(client, table))
    return done


STREAM_VIEW = "NEW_AND_OLD_IMAGES"


def _ensure_stream(
    client: Any,
    table: str,
    description: dict[str, Any],
    poll: float,
    timeout: float,
    report: Report,
) -> list[str]:
    """Turn on the table's stream, before the first copy can start: every v1 write that lands
    after the copy passed its row is read back from it (store/migration/sync.py). Any view
    type will do (the sync reads the v1 row itself), so an existing stream is kept."""
    if description.get("StreamSpecification", {}).get("StreamEnabled"):
        return []
    try:
        client.update_table(
            TableName=table,
            StreamSpecification={"StreamEnabled": True, "StreamViewType": STREAM_VIEW},
        )
    except ClientError as exc:
        if error_code(exc) in (*_NOT_SUPPORTED, "ValidationException"):
            return [
                "streams not supported by this server (skipped; `migration sync` and the "
                "background sync compare every row instead)"
            ]
        raise
    _wait_until_active(client, table, poll=poll, timeout=timeout, report=report)
    return [f"enabled the table's stream ({STREAM_VIEW})"]


# What a server answers for an operation it does not have (DynamoDB Local for backups, some
# compatible servers for TTL): the optional parts are then skipped, saying so.
_NOT_SUPPORTED = ("UnknownOperationException", "UnrecognizedClientException")


def _ensure_ttl(client: Any, table: str) -> list[str]:
    try:
        ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return []
        doomed = _rows_ttl_would_delete(client, table)
        if doomed:
            return [
                f"TTL not enabled: {doomed} v1 or account rows carry a number in "
                f"{keys.TTL_ATTRIBUTE}, and TTL would delete them (expired rows are still "
                "ignored by every reader; rename that v1 attribute, then run db init again)"
            ]
        client.update_time_to_live(
            TableName=table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": keys.TTL_ATTRIBUTE},
        )
    except ClientError as exc:
        # Optional: every reader compares expiresAt with the clock, TTL only tidies up.
        if error_code(exc) in _NOT_SUPPORTED:
            return ["TTL not supported by this server (skipped; expired rows are still ignored)"]
        raise
    return [f"enabled TTL on {keys.TTL_ATTRIBUTE}"]


def _rows_ttl_would_delete(client: Any, table: str) -> int:
    """How many rows that v2 does not own (v1 team data, the accounts v1 and v2 share) carry
    a number in the TTL attribute: turning TTL on would delete those whose time is past."""
    params: dict[str, Any] = {
        "TableName": table,
        "Select": "COUNT",
        "FilterExpression": "attribute_type(#ttl, :number) AND (begins_with(PK, :item) OR "
        "PK IN (:settings, :members) OR begins_with(PK, :user) OR begins_with(PK, :email))",
        "ExpressionAttributeNames": {"#ttl": keys.TTL_ATTRIBUTE},
        "ExpressionAttributeValues": {
            ":number": {"S": "N"},
            ":item": {"S": keys.V1_ITEM_PREFIX},
            ":settings": {"S": keys.V1_SETTINGS_PK},
            ":members": {"S": keys.V1_MEMBERS_PK},
            ":user": {"S": keys.USER_PREFIX},
            ":email": {"S": keys.EMAIL_PREFIX},
        },
    }
    count = 0
    while True:
        page = client.scan(**params)
        count += int(page.get("Count", 0))
        if "LastEvaluatedKey" not in page:
            return count
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _ensure_point_in_time_recovery(client: Any, table: str) -> list[str]:
    try:
        backups = client.describe_continuous_backups(TableName=table)
        status = backups["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
        if status.get("PointInTimeRecoveryStatus") == "ENABLED":
            return []
        client.update_continuous_backups(
            TableName=table,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
        return ["enabled point-in-time recovery"]
    except ClientError as exc:
        # DynamoDB Local and some emulators have no backups; the real service does.
        if error_code(exc) in _NOT_SUPPORTED:
            return ["point-in-time recovery not supported by this server (skipped)"]
        raise
