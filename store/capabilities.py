"""What a DynamoDB-compatible server must be able to do before v2 runs on it.

``db init`` asks each question on a scratch row of the real table, because emulators and
compatible servers answer ``CreateTable`` happily and only fail later, at the first sign-in,
where the failure would leave everyone on the preparing page. Each probe is the smallest call
of the shape the app makes: the migration's claim, fences, copies and flag are transactions
with condition checks; its copy is a parallel Scan; its read-back and every workspace page
are a BatchGetItem.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from . import keys
from .db import cancellation_reasons, error_code, new_id, s

# A probe row that outlives a crashed check is removed by TTL an hour later.
PROBE_TTL_SECONDS = 3600
PROBE_PREFIX = "PROBE#"


@dataclass
class Report:
    missing: list[str] = field(default_factory=list)
    # What v2 can do without, each with what it does instead.
    optional: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.missing


def _probe_key(name: str) -> keys.Key:
    return keys.key(keys.MIGRATION_PK, PROBE_PREFIX + name)


def _failure(what: str, exc: ClientError) -> str:
    message = exc.response.get("Error", {}).get("Message", "")
    return f"{what} ({error_code(exc)}{': ' + message[:200] if message else ''})"


def _transactions(client: Any, table: str, row: keys.Key, other: keys.Key) -> str | None:
    """A Put and a ConditionCheck that hold commit together; one that fails cancels both."""
    expires = {"N": str(int(time.time()) + PROBE_TTL_SECONDS)}
    what = "transactions with condition checks (TransactWriteItems)"
    try:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {**row, keys.TTL_ATTRIBUTE: expires},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": other,
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )
    except ClientError as exc:
        return _failure(what, exc)
    try:
        # The same again must be refused: the row now exists. A server that commits it
        # anyway does not evaluate conditions, and the migration's fences would mean nothing.
        client.transact_write_items(
            TransactItems=[
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": row,
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {"Put": {"TableName": table, "Item": {**other, keys.TTL_ATTRIBUTE: expires}}},
            ]
        )
    except ClientError as exc:
        if error_code(exc) == "TransactionCanceledException" and cancellation_reasons(exc)[:1] == [
            "ConditionalCheckFailed"
        ]:
            return None
        return _failure(what, exc)
    return f"{what}: a failed condition check did not cancel the transaction"


def _batch_get(client: Any, table: str, row: keys.Key) -> str | None:
    """A row written a moment ago comes back from a strongly consistent BatchGetItem."""
    expires = {"N": str(int(time.time()) + PROBE_TTL_SECONDS)}
    client.put_item(TableName=table, Item={**row, "probe": s("batch"), keys.TTL_ATTRIBUTE: expires})
    try:
        found = client.batch_get_item(RequestItems={table: {"Keys": [row], "ConsistentRead": True}})
    except ClientError as exc:
        return _failure("batch reads (BatchGetItem)", exc)
    if not found.get("Responses", {}).get(table) and not found.get("UnprocessedKeys"):
        return "batch reads (BatchGetItem): a row just written was not returned"
    return None


def _parallel_scan(client: Any, table: str) -> str | None:
    try:
        client.scan(TableName=table, Segment=0, TotalSegments=2, Limit=1, ConsistentRead=True)
    except ClientError as exc:
        return _failure("parallel, strongly consistent scans (Scan with Segment)", exc)
    return None


def _clean_up(client: Any, table: str, *rows: keys.Key) -> None:
    for row in rows:
        try:
            client.delete_item(TableName=table, Key=row)
        except ClientError:
            pass  # TTL removes what is left


def check(client: Any, table: str, report: Callable[[str], None] = lambda _: None) -> Report:
    """Ask the server each thing v2 relies on; ``Report.missing`` names what it lacks."""
    result = Report()
    run = new_id()
    row, other, read = (_probe_key(f"{run}-{name}") for name in ("a", "b", "read"))
    try:
        probes: list[Callable[[], str | None]] = [
            lambda: _transactions(client, table, row, other),
            lambda: _batch_get(client, table, read),
            lambda: _parallel_scan(client, table),
        ]
        for probe in probes:
            problem = probe()
            if problem:
                result.missing.append(problem)
    finally:
        _clean_up(client, table, row, other, read)
    if not _has_stream(client, table):
        result.optional.append(
            "no stream on the table: late v1 writes are found by comparing every row "
            "(`migration sync` and the background sync), not read from the stream"
        )
    report("server check: " + ("ready" if result.ready else f"{len(result.missing)} missing"))
    return result


def _has_stream(client: Any, table: str) -> bool:
    """Optional: where the table has a stream, late v1 writes are read from it."""
    description = client.describe_table(TableName=table)["Table"]
    return bool(description.get("StreamSpecification", {}).get("StreamEnabled"))
